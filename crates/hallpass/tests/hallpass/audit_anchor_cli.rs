//! The audit log's anchor through the built binary: the key kept outside the database,
//! `audit verify` telling altered from truncated from a malformed head, and chains written
//! before the key existed still verifying.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn hallpass(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("HALLPASS_DATABASE")
        .env_remove("HALLPASS_AUDIT_KEY")
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A data directory with people imported three times: the marker entry (1) and three
/// keyed imports (2-4).
fn keyed_log() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let roster = dir.path().join("roster.csv");
    std::fs::write(
        &roster,
        "username,display_name,role,year_group,form,email,mis_id\n\
         alice,Alice,student,9,9B,alice@school.example,M1\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    for _ in 0..3 {
        let o = hallpass(&data, &["people", "import", roster.to_str().unwrap()]);
        assert!(o.status.success(), "{}", err(&o));
    }
    dir
}

/// Rewrites the whole chain as someone with the database but not the key would: entry
/// `seq` changed, every hash recomputed and relinked.
fn rewrite_whole_chain(data: &Path, seq: i64) {
    runtime().block_on(async {
        let store = hallpass_store::Store::connect(&hallpass_store::sqlite_url_for(
            &data.join("hallpass.db"),
        ))
        .await
        .unwrap();
        let entries = store.audit().entries(1, i64::MAX).await.unwrap();
        let mut prev = hallpass_store::audit::GENESIS_HASH.to_string();
        let mut sql = String::new();
        for mut e in entries {
            if e.seq == seq {
                e.actor = "someone-else".into();
            }
            let hash = hallpass_store::audit::entry_hash(
                e.seq,
                e.at.as_microsecond(),
                &e.actor,
                &e.action,
                &e.subject,
                &e.details,
                &prev,
            );
            sql.push_str(&format!(
                "UPDATE audit_log SET actor = '{}', prev_hash = '{prev}', hash = '{hash}' \
                 WHERE seq = {};\n",
                e.actor, e.seq
            ));
            prev = hash;
        }
        hallpass_store::testing::execute_raw_sql_bypassing_the_store(&store, &sql)
            .await
            .unwrap();
        store.close().await;
    });
}

fn sql(data: &Path, statement: &str) {
    runtime().block_on(async {
        let store = hallpass_store::Store::connect_data_dir(data).await.unwrap();
        hallpass_store::testing::execute_raw_sql_bypassing_the_store(&store, statement)
            .await
            .unwrap();
        store.close().await;
    });
}

#[test]
fn a_chain_rewritten_whole_without_the_key_is_caught() {
    let dir = keyed_log();
    let data = dir.path().join("data");
    let o = hallpass(&data, &["audit", "verify"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(
        out(&o).contains("audit log intact: 4 entries"),
        "{}",
        out(&o)
    );
    let head = out(&hallpass(&data, &["audit", "head"])).trim().to_string();
    assert!(head.starts_with("4:") && head.len() == 66, "{head}");
    let o = hallpass(&data, &["audit", "verify", "--head", &head]);
    assert!(o.status.success(), "a genuine chain passes: {}", err(&o));

    rewrite_whole_chain(&data, 3);
    let o = hallpass(&data, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(err(&o).contains("entry 1 was altered"), "{}", err(&o));
}

#[test]
fn verify_tells_truncated_from_altered_from_a_malformed_head() {
    let dir = keyed_log();
    let data = dir.path().join("data");
    let head = out(&hallpass(&data, &["audit", "head"])).trim().to_string();

    for (bad, why) in [
        ("nothex", "64 hex digits"),
        ("abcdef", "64 hex digits, this has 6"),
        (&"0".repeat(64), "64 zeros"),
        (&format!("x:{}", "a".repeat(64)), "entry number"),
    ] {
        let o = hallpass(&data, &["audit", "verify", "--head", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", err(&o));
        assert!(
            err(&o).contains(&format!("malformed head {bad:?}")) && err(&o).contains(why),
            "{bad}: {}",
            err(&o)
        );
    }

    sql(&data, "DELETE FROM audit_log WHERE seq = 4");
    let o = hallpass(&data, &["audit", "verify", "--head", &head]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("the log was truncated: it ends at entry 3, but entry 4 existed"),
        "{}",
        err(&o)
    );
    assert!(!err(&o).contains("altered"), "{}", err(&o));

    // Cut back to before the key was put in use: the key file knows.
    sql(&data, "DELETE FROM audit_log");
    let o = hallpass(&data, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("truncated"), "{}", err(&o));
}

#[test]
fn the_key_kept_off_the_machine_verifies_and_a_lost_key_is_never_replaced() {
    let dir = keyed_log();
    let data = dir.path().join("data");
    let kept = dir.path().join("kept.key");
    std::fs::copy(data.join("audit.key"), &kept).unwrap();
    std::fs::remove_file(data.join("audit.key")).unwrap();
    let o = hallpass(&data, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("entries from 1 on are keyed") && err(&o).contains("--audit-key"),
        "{}",
        err(&o)
    );
    let o = hallpass(
        &data,
        &["session", "start", "--user", "alice", "--ip", "10.0.0.1"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("is missing"), "{}", err(&o));
    assert!(
        !data.join("audit.key").exists(),
        "no new key on a keyed log"
    );
    let o = hallpass(
        &data,
        &["audit", "verify", "--audit-key", kept.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", err(&o));
}

#[test]
fn a_chain_from_before_the_key_stays_verifiable_and_is_keyed_from_then_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // Written as an earlier version did: no key.
    runtime().block_on(async {
        let store = hallpass_store::Store::connect(&hallpass_store::sqlite_url_for(
            &data.join("hallpass.db"),
        ))
        .await
        .unwrap();
        for i in 0..3 {
            store
                .audit()
                .append(
                    "old",
                    "people.import",
                    "roster.csv",
                    &serde_json::json!({ "i": i }),
                    jiff::Timestamp::UNIX_EPOCH,
                )
                .await
                .unwrap();
        }
        store.close().await;
    });
    let o = hallpass(&data, &["audit", "verify"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(!data.join("audit.key").exists(), "verify never makes a key");
    let o = hallpass(&data, &["retention", "run"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(data.join("audit.key").exists());
    let o = hallpass(&data, &["audit", "list"]);
    let listing = out(&o);
    let actions: Vec<&str> = listing
        .lines()
        .map(|l| l.split('\t').nth(3).unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "people.import",
            "people.import",
            "people.import",
            "audit.keyed",
            "retention.run"
        ],
        "{listing}"
    );
    let o = hallpass(&data, &["audit", "verify"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("5 entries"), "{}", out(&o));
    // An old entry altered is still caught.
    sql(&data, "UPDATE audit_log SET actor = 'x' WHERE seq = 2");
    let o = hallpass(&data, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("entry 2 was altered"), "{}", err(&o));
}

#[test]
fn serve_logs_the_audit_head_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args([
            "serve",
            "--dns-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--web-listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:9",
            "--data-dir",
        ])
        .arg(&data)
        .env_remove("HALLPASS_DATABASE")
        .env_remove("HALLPASS_AUDIT_KEY")
        .env("HALLPASS_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut banner = String::new();
    let mut buf = [0u8; 4096];
    while !banner.contains("Stop with Ctrl-C") {
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        assert!(n > 0, "serve ended before its banner: {banner}");
        banner.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log).unwrap();
    // A fresh store: the first entry is the one that put the key in use.
    let line = logged
        .lines()
        .find(|l| l.contains("audit log head"))
        .unwrap_or_else(|| panic!("no audit head in the log:\n{logged}"));
    let key = std::fs::read_to_string(data.join("audit.key")).unwrap();
    assert!(key.contains("from_seq = 1"), "{key}");
    let head = line
        .split("audit_head=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap();
    let o = hallpass(&data, &["audit", "verify", "--head", head]);
    assert!(head.starts_with("1:"), "{line}");
    assert!(o.status.success(), "the logged head verifies: {}", err(&o));
    assert!(line.contains("audit_key_id="), "{line}");
}
