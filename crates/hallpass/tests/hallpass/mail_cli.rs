//! `hallpass mail check` through the real binary: verdict, rule, document, clause,
//! message and detectors for the fixture messages, one JSON object with `--json`, the
//! envelope from the headers or from --from/--to, groups, and bad input.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> String {
    root()
        .join("crates/mail/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn wcs() -> String {
    root()
        .join("examples/policies/wcs.toml")
        .display()
        .to_string()
}

fn mail_check(args: &[&str]) -> Output {
    let wcs = wcs();
    Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args([
            "mail",
            "check",
            "--policy",
            &wcs,
            "--at",
            "2026-12-07 10:00",
        ])
        .args(args)
        .env_remove("HALLPASS_DATABASE")
        .env_remove("HALLPASS_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = mail_check(&all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn text_output_cites_the_clause_and_names_the_detectors() {
    let o = mail_check(&[&fixture("exe-as-pdf.eml")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "REJECT", "{out}");
    assert_eq!(
        lines[1],
        "  direction: outbound (teacher@wcs.london -> parent@gmail.com)"
    );
    assert_eq!(lines[2], "  sender:    not on the roster; groups: none");
    assert_eq!(lines[3], "  rule:      mail-executables");
    assert_eq!(lines[4], "  cites:     WCS ICT Policy (wcs), clause 3.2.9");
    assert!(
        lines[5].starts_with("  message:   Programs and scripts"),
        "{out}"
    );
    assert_eq!(lines[6], "  matched:   attachment executable");
    assert_eq!(lines[7], "  detectors: attachment:executable");
    assert!(
        lines[8].starts_with("  attachment: invoice.pdf (")
            && lines[8]
                .ends_with("real type application/vnd.microsoft.portable-executable, executable)"),
        "{out}"
    );
}

#[test]
fn json_is_one_object_with_verdict_rule_clause_and_detectors() {
    let v = json(&[&fixture("class-list.eml")]);
    assert_eq!(v["verdict"], "reject");
    assert_eq!(v["rule"], "mail-bulk-personal-data");
    assert_eq!(v["document"], "wcs");
    assert_eq!(v["clause"], "3.2.1");
    assert_eq!(v["direction"], "outbound");
    assert_eq!(
        v["detectors"],
        serde_json::json!(["personal:date-of-birth"])
    );
    assert_eq!(v["personal_data"]["dates_of_birth"], 40);

    let v = json(&[&fixture("class-list-encrypted.eml")]);
    assert_eq!(v["verdict"], "deliver");
    assert_eq!(v["rule"], serde_json::Value::Null);
    assert_eq!(v["attachments"][0]["encrypted"], true);

    let v = json(&[&fixture("zip-scr.eml")]);
    assert_eq!(v["verdict"], "reject");
    assert_eq!(v["direction"], "inbound");
    assert_eq!(
        v["detectors"],
        serde_json::json!(["attachment:nested-executable"])
    );

    let v = json(&[&fixture("ni-subject.eml")]);
    assert_eq!(
        (v["verdict"].as_str(), v["clause"].as_str()),
        (Some("reject"), Some("5.7"))
    );
}

#[test]
fn envelope_flags_override_the_headers() {
    // The class list to a colleague is internal: delivered.
    let v = json(&["--to", "office@wcs.london", &fixture("class-list.eml")]);
    assert_eq!(v["verdict"], "deliver");
    assert_eq!(v["recipients"], serde_json::json!(["office@wcs.london"]));
    // The encrypted zip from outside is held (3.4.5).
    let v = json(&[
        "--from",
        "x@example.com",
        "--to",
        "office@wcs.london",
        &fixture("class-list-encrypted.eml"),
    ]);
    assert_eq!(
        (v["verdict"].as_str(), v["clause"].as_str()),
        (Some("quarantine"), Some("3.4.5"))
    );
}

#[test]
fn groups_are_checked_against_the_policy() {
    let v = json(&["--group", "students", &fixture("plain.eml")]);
    assert_eq!(v["groups"], serde_json::json!(["students"]));
    let o = mail_check(&["--group", "pupils", &fixture("plain.eml")]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown group `pupils` (groups: students, staff"),
        "{err}"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let o = mail_check(&["/nonexistent/message.eml"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read /nonexistent/message.eml"));

    let dir = tempfile::tempdir().unwrap();
    let no_to = dir.path().join("no-to.eml");
    std::fs::write(&no_to, "From: a@wcs.london\r\nSubject: x\r\n\r\nhi\r\n").unwrap();
    let o = mail_check(&[no_to.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no recipient: give --to ADDR"), "{err}");

    let bad_policy = dir.path().join("bad.toml");
    std::fs::write(
        &bad_policy,
        format!("{}\n[[mail_rules]]\nid = \"x\"\naction = \"bounce\"\ndocument = \"wcs\"\nclause = \"1\"\nsenders = [\"a.example\"]\n",
            std::fs::read_to_string(wcs()).unwrap()),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args([
            "mail",
            "check",
            "--policy",
            bad_policy.to_str().unwrap(),
            &fixture("plain.eml"),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml:")
            && err.contains("`mail_rules[10].action`: unknown value `bounce`"),
        "{err}"
    );
}

#[test]
fn without_groups_the_sender_is_found_on_the_roster() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let roster = dir.path().join("roster.csv");
    std::fs::write(
        &roster,
        "username,display_name,role,year_group,form,email,mis_id,groups\n\
         s.student,Sam Student,student,9,9B,Sam.Student@wcs.london,S1,\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(["people", "import", roster.to_str().unwrap(), "--data-dir"])
        .arg(&data)
        .env_remove("HALLPASS_DATABASE")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let data = data.to_str().unwrap();
    let plain = fixture("plain.eml");
    let v = json(&[
        "--data-dir",
        data,
        "--from",
        "sam.student@wcs.london",
        &plain,
    ]);
    assert_eq!(v["person"], "s.student");
    assert_eq!(v["groups"], serde_json::json!(["students", "year-9"]));
    // Someone not on the roster: no person, no groups.
    let v = json(&["--data-dir", data, &plain]);
    assert_eq!(v["person"], serde_json::Value::Null);
    assert_eq!(v["groups"], serde_json::json!([]));
    // A SASL login names the person whatever the sender address, as the relay reads it:
    // the username, or the username in the school's domain (Cyrus's realm).
    for login in ["s.student", "S.Student@wcs.london"] {
        let v = json(&[
            "--data-dir",
            data,
            "--login",
            login,
            "--from",
            "head@wcs.london",
            &plain,
        ]);
        assert_eq!(v["person"], "s.student", "{login}");
        assert_eq!(v["groups"], serde_json::json!(["students", "year-9"]));
    }
    // A login the roster does not know falls back to the sender's address.
    let v = json(&[
        "--data-dir",
        data,
        "--login",
        "nobody",
        "--from",
        "sam.student@wcs.london",
        &plain,
    ]);
    assert_eq!(v["person"], "s.student");
}
