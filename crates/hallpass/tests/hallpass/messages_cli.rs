//! Error messages through the built binary: each says a thing once, in words that name
//! the problem (not "No such device" for a directory, not an OS error twice).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn stderr_of(args: &[&str], dir: &std::path::Path) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(args)
        .env_remove("HALLPASS_DATABASE")
        .env_remove("HALLPASS_DATA_DIR")
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn missing_and_wrong_kinds_of_files_are_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let file = file.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "people",
                "import",
                "/nonexistent/roster.csv",
                "--data-dir",
                data,
            ],
            "/nonexistent/roster.csv",
        ),
        (
            &["people", "import", "/tmp", "--data-dir", data],
            "/tmp is a directory, not a roster CSV file",
        ),
        (
            &["serve", "--config", "/nonexistent/hallpass.toml"],
            "/nonexistent/hallpass.toml",
        ),
        (
            &["policy", "check", "/nonexistent/policy.toml"],
            "/nonexistent/policy.toml",
        ),
        (
            &["catalog", "stats", "/nonexistent/x.hpidx"],
            "/nonexistent/x.hpidx",
        ),
        (&["catalog", "stats", "/tmp"], "/tmp is a directory"),
        (
            &["session", "list", "--data-dir", file],
            "is not a directory",
        ),
        (
            &["session", "end", "--user", "nosuch", "--data-dir", data],
            "unknown user \"nosuch\"",
        ),
    ];
    for (args, want) in cases {
        let (code, err) = stderr_of(args, dir.path());
        assert_ne!(code, Some(0), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        for once in [
            "(os error 2)",
            "No such file or directory",
            "Is a directory",
        ] {
            assert!(
                err.matches(once).count() <= 1,
                "{args:?} says {once:?} twice: {err}"
            );
        }
        assert!(!err.contains("No such device"), "{args:?}: {err}");
        assert_eq!(
            err.matches("error:").count(),
            1,
            "{args:?}: said once: {err}"
        );
    }
}
