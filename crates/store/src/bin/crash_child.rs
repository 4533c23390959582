//! Child process for the crash test (`tests/crash.rs`): records events with
//! `record_acked` from several tasks and prints `ACK <target>` after each acknowledgement,
//! until it is killed. Usage: `hallpass-store-crash-child DATABASE_URL SPILL_PATH RUN_ID`.

use std::io::Write;

use hallpass_store::{Event, EventKind, EventWriter, EventWriterConfig, Store};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, spill, run] = args.as_slice() else {
        return Err("usage: hallpass-store-crash-child DATABASE_URL SPILL_PATH RUN_ID".into());
    };
    let store = Store::connect(url).await?;
    let mut cfg = EventWriterConfig::new(spill);
    // Small queue and batches: the kill lands in every phase (queued, committing, spilling).
    cfg.capacity = 64;
    cfg.max_batch = 16;
    let (writer, _task) = EventWriter::start(store, cfg)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    for t in 0..8 {
        let writer = writer.clone();
        let tx = tx.clone();
        let run = run.clone();
        tokio::spawn(async move {
            for i in 0u64.. {
                let target = format!("crash-{run}-{t}-{i}");
                let mut e = Event::new(
                    EventKind::Dns,
                    hallpass_clock::Clock::system().now(),
                    target.clone(),
                );
                e.verdict = if i % 3 == 0 {
                    "block".into()
                } else {
                    "allow".into()
                };
                e.categories = vec!["games".into()];
                e.content = (i % 5 == 0).then(|| format!("content {i}"));
                // Fire-and-forget traffic alongside, which may spill when the queue is full.
                writer.record(Event::new(
                    EventKind::Web,
                    hallpass_clock::Clock::system().now(),
                    format!("noise-{run}-{t}-{i}"),
                ));
                match writer.record_acked(e).await {
                    Ok(_) => {
                        if tx.send(target).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        eprintln!("not acknowledged: {e}");
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    let mut out = std::io::stdout().lock();
    while let Some(target) = rx.recv().await {
        writeln!(out, "ACK {target}")?;
        out.flush()?;
    }
    Ok(())
}
