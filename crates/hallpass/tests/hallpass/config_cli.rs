//! `hallpass serve --config` refuses what the configuration file cannot mean, through the
//! built binary, before anything is opened or bound: every message names the file, line,
//! column and field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn serve_with(config: &str) -> (Option<i32>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hallpass.toml");
    std::fs::write(&path, config).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .env_remove("HALLPASS_DATABASE")
        .env_remove("HALLPASS_DATA_DIR")
        .current_dir(dir.path())
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).replace(&path.display().to_string(), "FILE"),
        dir,
    )
}

#[test]
fn empty_listen_absurd_numbers_and_two_stores_are_refused() {
    let (code, err, dir) = serve_with(
        "version = 1\n[dns]\nlisten = []\n[events]\nqueue = 99999999999999\nbatch = 0\n\
         [retention]\ncontent_days = 100000\n",
    );
    assert_eq!(code, Some(2), "{err}");
    for want in [
        "FILE:3:10: dns.listen: is empty: give at least one ADDR:PORT, or leave the key out for 127.0.0.1:5300",
        "FILE:5:9: events.queue: 99999999999999 is out of range: expected 1 to 4194304 events",
        "FILE:6:9: events.batch: 0 is out of range: expected 1 to 100000 events",
        "FILE:8:16: retention.content_days: 100000 is out of range: expected 1 to 36500 days",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(
        !dir.path().join("hallpass-data").exists(),
        "refused before anything is created"
    );

    let (code, err, _dir) = serve_with(
        "version = 1\ndata_dir = \"/var/lib/hallpass\"\ndatabase = \"sqlite:///srv/other.db\"\n",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(
            "FILE:3:12: database: a sqlite:// database and data_dir are both given: give one"
        ),
        "{err}"
    );
}

#[test]
fn a_sqlite_database_flag_with_a_data_dir_is_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir.path())
        .arg("--database")
        .arg(format!("sqlite://{}/x.db", dir.path().display()))
        .env_remove("HALLPASS_DATABASE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("both a SQLite database") && err.contains("give one"),
        "{err}"
    );
    assert!(!dir.path().join("x.db").exists());
}
