//! Child process for the crash tests (`tests/suite`): records events and reports each, until
//! it is killed. Usage: `hallpass-store-crash-child DATABASE_URL SPILL_PATH RUN_ID [record]`.
//!
//! * default: `record_acked` from several tasks, printing `ACK <target>` after each
//!   acknowledgement (with fire-and-forget noise alongside, which may spill);
//! * `record`: fire-and-forget `record` of an allowed DNS query every millisecond, printing
//!   `REC <target>` after each (the locked-database test: what was recorded more than the
//!   in-memory bound before the kill must survive it).

use std::io::Write;
use std::time::Duration;

use hallpass_store::{Event, EventKind, EventWriter, EventWriterConfig, Store};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (url, spill, run, mode) = match args.as_slice() {
        [_, url, spill, run] => (url, spill, run, ""),
        [_, url, spill, run, mode] => (url, spill, run, mode.as_str()),
        _ => {
            return Err(
                "usage: hallpass-store-crash-child DATABASE_URL SPILL_PATH RUN_ID [record]".into(),
            );
        }
    };
    let store = Store::connect(url).await?;
    let mut cfg = EventWriterConfig::new(spill);
    if mode == "record" {
        let (writer, _task) = EventWriter::start(store, cfg)?;
        return record_only(&writer, run).await;
    }
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

async fn record_only(writer: &EventWriter, run: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut out = std::io::stdout();
    for i in 0u64.. {
        tick.tick().await;
        let target = format!("{run}-{i}.example");
        let mut e = Event::new(
            EventKind::Dns,
            hallpass_clock::Clock::system().now(),
            target.clone(),
        );
        e.client_ip = Some(std::net::IpAddr::from([10, 0, 0, 1]));
        writer.record(e);
        writeln!(out, "REC {target}")?;
        out.flush()?;
    }
    Ok(())
}
