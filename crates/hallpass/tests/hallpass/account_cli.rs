//! `hallpass account ...` and `hallpass token create` end to end through the built binary:
//! bad input is refused with a clear error and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn hallpass(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("HALLPASS_DATABASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn with_roster(dir: &Path) {
    let roster = dir.join("roster.csv");
    std::fs::write(
        &roster,
        "username,display_name,role,year_group,form,email,mis_id\n\
         ms.hoy,Ms Hoy,staff,,,ms.hoy@school.example,M1\n\
         ava.student,Ava,student,9,9B,ava@school.example,M2\n",
    )
    .unwrap();
    let o = hallpass(dir, &["people", "import", roster.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", err(&o));
}

#[test]
fn bad_input_is_refused_with_the_reason_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    with_roster(d);
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (
            &["account", "add", "--user", "ms.hoy", "--role", "wizard"],
            None,
            "unknown role \"wizard\"",
        ),
        (
            &[
                "account",
                "add",
                "--user",
                "ms.hoy",
                "--role",
                "head_of_year",
            ],
            None,
            "needs at least one --year",
        ),
        (
            &[
                "account",
                "add",
                "--user",
                "ms.hoy",
                "--role",
                "head_of_year",
                "--year",
                "14",
            ],
            None,
            "--year \"14\" is not a year group",
        ),
        (
            &[
                "account",
                "add",
                "--user",
                "ms.hoy",
                "--role",
                "head_of_year",
                "--year",
                "nine",
            ],
            None,
            "--year \"nine\" is not a year group (1 to 13, or R)",
        ),
        (
            &[
                "account",
                "add",
                "--user",
                "ms.hoy",
                "--role",
                "head_of_year",
                "--year",
                "0",
            ],
            None,
            "--year \"0\" is not a year group",
        ),
        (
            &[
                "account",
                "add",
                "--user",
                "ms.hoy",
                "--role",
                "head_of_year",
                "--year",
                "99",
            ],
            None,
            "--year \"99\" is not a year group",
        ),
        (
            &[
                "account",
                "add",
                "--user",
                "ms.hoy",
                "--role",
                "head_of_year",
                "--year",
                "9",
                "--year",
                "",
            ],
            None,
            "--year \"\" is not a year group",
        ),
        (
            &["account", "add", "--user", "ms.hoy", "--role", "Teacher"],
            None,
            "unknown role \"Teacher\" (roles: network_manager, dsl, head_of_year",
        ),
        (
            &[
                "account", "add", "--user", "ms.hoy", "--role", "teacher", "--year", "9",
            ],
            None,
            "only for the head_of_year role",
        ),
        (
            &["account", "add", "--user", "nobody", "--role", "teacher"],
            None,
            "unknown user \"nobody\"",
        ),
        (
            &[
                "account",
                "add",
                "--user",
                "ms.hoy",
                "--role",
                "dsl",
                "--password-stdin",
            ],
            Some("Password123!\n"),
            "common passwords",
        ),
        (
            &[
                "account",
                "add",
                "--user",
                "ms.hoy",
                "--role",
                "dsl",
                "--password-stdin",
            ],
            Some("123456\n"),
            "consecutive or repeated digits",
        ),
        (
            &["token", "create", "--name", "t", "--scope", "everything"],
            None,
            "is not an operation",
        ),
    ];
    let audit_before = out(&hallpass(d, &["audit", "list", "--last", "1000"], None));
    for (args, stdin, want) in cases {
        let o = hallpass(d, args, *stdin);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        assert!(err(&o).contains(want), "{args:?}: {}", err(&o));
        assert!(!err(&o).contains("panicked"), "{args:?}: {}", err(&o));
        assert!(out(&o).is_empty(), "{args:?} printed {}", out(&o));
    }
    let o = hallpass(d, &["account", "list"], None);
    assert!(o.status.success());
    assert_eq!(out(&o).lines().count(), 1, "only the header: {}", out(&o));
    let audit_after = out(&hallpass(d, &["audit", "list", "--last", "1000"], None));
    assert_eq!(
        audit_before, audit_after,
        "refused commands wrote to the audit log"
    );
}

#[test]
fn accounts_are_added_listed_disabled_and_tokens_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    with_roster(d);
    let o = hallpass(
        d,
        &[
            "account",
            "add",
            "--user",
            "ms.hoy",
            "--role",
            "head_of_year",
            "--year",
            "09",
            "--year",
            "10",
            "--year",
            "9",
        ],
        None,
    );
    assert!(o.status.success(), "{}", err(&o));
    let generated = out(&o).lines().last().unwrap().to_string();
    assert!(generated.len() >= 10, "{}", out(&o));
    let o = hallpass(
        d,
        &[
            "account",
            "add",
            "--user",
            "ava.student",
            "--role",
            "student",
            "--password-stdin",
        ],
        Some("violet-kettle-58-drums\n"),
    );
    assert!(o.status.success(), "{}", err(&o));
    let o = hallpass(
        d,
        &[
            "account",
            "add",
            "--user",
            "ava.student",
            "--role",
            "student",
        ],
        None,
    );
    assert!(
        err(&o).contains("already has a console account"),
        "{}",
        err(&o)
    );
    let o = hallpass(
        d,
        &[
            "account",
            "passwd",
            "--user",
            "ava.student",
            "--password-stdin",
        ],
        Some("amber-lantern-31-flutes\n"),
    );
    assert!(o.status.success(), "{}", err(&o));
    let o = hallpass(d, &["account", "disable", "--user", "ava.student"], None);
    assert!(o.status.success(), "{}", err(&o));
    let list = out(&hallpass(d, &["account", "list"], None));
    assert!(list.contains("ms.hoy") && list.contains("9,10"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("ava.student") && l.contains("disabled")),
        "{list}"
    );

    let o = hallpass(
        d,
        &[
            "token",
            "create",
            "--name",
            "reports",
            "--scope",
            "dashboard.view",
        ],
        None,
    );
    assert!(o.status.success(), "{}", err(&o));
    let token = out(&o).lines().last().unwrap().to_string();
    assert_eq!(token.len(), 64, "{}", out(&o));
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    let o = hallpass(
        d,
        &[
            "token",
            "create",
            "--name",
            "reports",
            "--scope",
            "audit.view",
        ],
        None,
    );
    assert!(err(&o).contains("already exists"), "{}", err(&o));
    // The database holds only hashes.
    let db = std::fs::read(d.join("hallpass.db")).unwrap();
    let needle = token.as_bytes();
    assert!(
        !db.windows(needle.len()).any(|w| w == needle),
        "the token is stored in clear"
    );

    let o = hallpass(d, &["audit", "list", "--last", "50"], None);
    let audit = out(&o) + &err(&o);
    for action in [
        "account.add",
        "account.passwd",
        "account.disable",
        "token.create",
    ] {
        assert!(audit.contains(action), "{action} not audited: {audit}");
    }
}
