//! The store's commands end to end through the built binary: `people import`,
//! `session start|end|list`, `audit verify|head`, `retention run`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hallpass(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("HALLPASS_DATABASE")
        .output()
        .unwrap()
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/store")
        .join(name)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn roster_with_errors_imports_nothing_and_names_every_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = data("roster-bad.csv");
    let o = hallpass(dir.path(), &["people", "import", bad.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for want in [
        "roster-bad.csv:3: column year_group",
        "roster-bad.csv:4: column username",
        "roster-bad.csv:5: column email",
        "roster-bad.csv:6: column username",
        "nothing was imported",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let o = hallpass(dir.path(), &["people", "list"]);
    assert!(o.status.success());
    assert_eq!(text(&o).0, "", "nobody was imported");
}

#[test]
fn good_roster_twice_changes_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let good = data("roster-good.csv");
    let good = good.to_str().unwrap();
    let o = hallpass(dir.path(), &["people", "import", good, "--dry-run"]);
    assert!(o.status.success());
    assert!(
        text(&o)
            .0
            .contains("dry run: 3 added, 0 changed, 0 unchanged")
    );
    let o = hallpass(dir.path(), &["people", "import", good]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("3 added, 0 changed, 0 unchanged"));
    let o = hallpass(dir.path(), &["people", "import", good]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(
        out.contains("0 added, 0 changed, 3 unchanged"),
        "second import: {out}"
    );
    assert!(!out.contains("added alice"));
    let (list, _) = text(&hallpass(dir.path(), &["people", "list"]));
    assert!(
        list.contains("alice\tAlice Adams\tstudent\t9\t9B\tChess club;Year 9"),
        "{list}"
    );
}

#[test]
fn sessions_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = data("roster-good.csv");
    assert!(
        hallpass(dir.path(), &["people", "import", good.to_str().unwrap()])
            .status
            .success()
    );
    let o = hallpass(
        dir.path(),
        &["session", "start", "--user", "zed", "--ip", "10.0.0.9"],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("unknown user \"zed\""),
        "{:?}",
        text(&o)
    );
    let o = hallpass(
        dir.path(),
        &[
            "session",
            "start",
            "--user",
            "alice",
            "--ip",
            "10.0.0.9",
            "--workstation",
            "LAB1-PC04",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let (list, _) = text(&hallpass(dir.path(), &["session", "list"]));
    assert!(
        list.contains("10.0.0.9\talice\tstudent\t9\t9B\tChess club;Year 9\tLAB1-PC04"),
        "{list}"
    );
    let o = hallpass(dir.path(), &["session", "end", "--ip", "10.0.0.9"]);
    assert!(text(&o).0.contains("1 session(s) ended"));
    assert_eq!(text(&hallpass(dir.path(), &["session", "list"])).0, "");
}

/// Tamper with the SQLite database directly; `audit verify` exits 1 naming the entry.
#[test]
fn audit_verify_detects_tampering() {
    let good = data("roster-good.csv");
    let tamper = |sql: &str| -> (Option<i32>, String) {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..4 {
            // four imports, four audit entries
            assert!(
                hallpass(dir.path(), &["people", "import", good.to_str().unwrap()])
                    .status
                    .success()
            );
        }
        let o = hallpass(dir.path(), &["audit", "verify"]);
        assert!(o.status.success(), "{:?}", text(&o));
        assert!(text(&o).0.contains("audit log intact: 4 entries"));
        let head = text(&hallpass(dir.path(), &["audit", "head"]))
            .0
            .trim()
            .to_string();
        assert_eq!(head.len(), 64);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = hallpass_store::Store::connect_data_dir(dir.path())
                .await
                .unwrap();
            hallpass_store::testing::execute_raw_sql_bypassing_the_store(&store, sql)
                .await
                .unwrap();
            store.close().await;
        });
        let o = hallpass(dir.path(), &["audit", "verify", "--head", &head]);
        (o.status.code(), text(&o).1)
    };
    let (code, err) = tamper("UPDATE audit_log SET actor = 'nobody' WHERE seq = 2");
    assert_eq!(code, Some(1));
    assert!(err.contains("entry 2 was altered"), "{err}");
    let (code, err) = tamper("DELETE FROM audit_log WHERE seq = 3");
    assert_eq!(code, Some(1));
    assert!(err.contains("entry 3 was removed"), "{err}");
    let (code, err) = tamper(
        "UPDATE audit_log SET seq = -1 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; \
         UPDATE audit_log SET seq = 3 WHERE seq = -1",
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("entry 2 is out of order"), "{err}");
    let (code, err) = tamper("DELETE FROM audit_log WHERE seq = 4");
    assert_eq!(code, Some(1));
    assert!(err.contains("expected head"), "{err}");
}

#[test]
fn retention_run_prints_counts_and_audits() {
    let dir = tempfile::tempdir().unwrap();
    let o = hallpass(dir.path(), &["retention", "run", "--dry-run"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("would delete 0 dns event(s)"));
    let o = hallpass(dir.path(), &["retention", "run", "--dns-days", "30"]);
    assert!(o.status.success());
    let (out, _) = text(&o);
    assert!(
        out.contains("deleted 0 dns event(s)") && out.contains("audit entry 1"),
        "{out}"
    );
}

#[test]
fn unavailable_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args([
            "audit",
            "head",
            "--database",
            "postgres://hallpass:s3cret@127.0.0.1:1/hallpass",
        ])
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("postgres://hallpass:***@127.0.0.1:1/hallpass is unavailable"),
        "{err}"
    );
    assert!(!err.contains("s3cret"));
    drop(dir);
}
