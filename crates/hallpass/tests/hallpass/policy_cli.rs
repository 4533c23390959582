//! `hallpass policy check` and `hallpass explain` through the real binary: the broken
//! policy corpus (exact FILE:LINE:COL and field, exit 1), both examples, and the
//! `explain --json` contract.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hallpass"))
}

/// `hallpass explain --policy examples/policies/wcs.toml`, from the repository root.
fn explain_wcs() -> Command {
    let mut c = bin();
    c.current_dir(repo())
        .args(["explain", "--policy", "examples/policies/wcs.toml"]);
    c
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bad_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/policy/bad")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Each broken file and a diagnostic line it must produce, exactly.
const CORPUS: &[(&str, &str)] = &[
    (
        "alert_severity.toml",
        "alert_severity.toml:36:40: `rules[0].alert.severity`: 7 is out of range (1 to 5)",
    ),
    (
        "bad_action.toml",
        "bad_action.toml:30:10: `rules[0].action`: unknown action `deny` (expected \"allow\", \"block\" or \"warn\")",
    ),
    (
        "bad_cidr.toml",
        "bad_cidr.toml:21:13: `groups.guests.networks[0]`: `10.50.0.0/33` is not a CIDR range (e.g. \"10.50.0.0/16\" or \"2001:db8::/48\")",
    ),
    (
        "bad_date.toml",
        "bad_date.toml:15:11: `periods.lessons.except[0]`: `2027-02-30` is not a date or date range (e.g. \"2026-12-25\" or \"2026-09-03..2026-10-23\")",
    ),
    (
        "bad_day.toml",
        "bad_day.toml:13:23: `periods.lessons.days[2]`: `caturday` is not a day (mon, tue, wed, thu, fri, sat, sun, weekdays, weekends, daily)",
    ),
    (
        "bad_timezone.toml",
        "bad_timezone.toml:6:12: `school.timezone`: unknown IANA time zone `Europe/Londn` (e.g. \"Europe/London\")",
    ),
    (
        "bad_version.toml",
        "bad_version.toml:2:11: `version`: unsupported policy format version 2 (this Hallpass reads version 1)",
    ),
    (
        "bad_year.toml",
        "bad_year.toml:18:13: `groups.students.years[1]`: year groups are integers from 1 to 14",
    ),
    (
        "blockpage_without_address.toml",
        "blockpage_without_address.toml:13:14: `dns.block_mode`: \"blockpage\" needs `blockpage_ipv4` or `blockpage_ipv6`",
    ),
    (
        "cidr_host_bits.toml",
        "cidr_host_bits.toml:21:13: `groups.guests.networks[0]`: `10.50.1.0/16` has host bits set (did you mean \"10.50.0.0/16\"?)",
    ),
    (
        "domain_is_url.toml",
        "domain_is_url.toml:33:12: `rules[0].domains[0]`: `https://games.example/play` is a URL, not a domain (use `url_prefixes`)",
    ),
    (
        "duplicate_rule_id.toml",
        "duplicate_rule_id.toml:38:6: `rules[1].id`: duplicate rule id `games` (also rules[0])",
    ),
    (
        "empty_condition.toml",
        "empty_condition.toml:33:14: `rules[0].categories` is empty: list at least one value, or leave the key out",
    ),
    (
        "hour_out_of_range.toml",
        "hour_out_of_range.toml:14:10: `periods.lessons.times[0]`: malformed time range `08:50-25:00` (expected \"HH:MM-HH:MM\", e.g. \"08:50-10:30\" or \"22:00-06:00\")",
    ),
    (
        "invalid_toml.toml",
        "invalid_toml.toml:5:20: invalid TOML: invalid basic string, expected `\"`",
    ),
    (
        "malformed_time.toml",
        "malformed_time.toml:14:25: `periods.lessons.times[1]`: malformed time range `10:50-12:3` (expected \"HH:MM-HH:MM\", e.g. \"08:50-10:30\" or \"22:00-06:00\")",
    ),
    (
        "missing_clause.toml",
        "missing_clause.toml:28:1: `rules[0]`: missing required key `clause`",
    ),
    (
        "no_unidentified.toml",
        "no_unidentified.toml:16:9: `groups`: no group has `unidentified = true`; one group must take clients nobody could identify",
    ),
    (
        "reversed_dates.toml",
        "reversed_dates.toml:15:10: `periods.lessons.dates[0]`: range `2027-07-21..2026-09-03` ends before it starts",
    ),
    (
        "two_unidentified.toml",
        "two_unidentified.toml:26:16: `groups.unidentified.unidentified`: only one group can be for unidentified clients (already `guests`)",
    ),
    (
        "unknown_calendar.toml",
        "unknown_calendar.toml:15:12: `periods.lessons.calendar`: unknown calendar `term` (defined: none)",
    ),
    (
        "unknown_document.toml",
        "unknown_document.toml:31:12: `rules[0].document`: unknown document `ict` (defined: aup)",
    ),
    (
        "unknown_group.toml",
        "unknown_group.toml:34:11: `rules[0].groups[0]`: unknown group `studnets` (defined: students, guests, unidentified)",
    ),
    (
        "unknown_key.toml",
        "unknown_key.toml:30:1: `rules[0].acton`: unknown key (expected one of: id, action, document, clause, message, categories, domains, url_prefixes, file_types, groups, except_groups, during, outside, teacher_override, alert)",
    ),
    (
        "unknown_period.toml",
        "unknown_period.toml:35:11: `rules[0].during[0]`: unknown period `lesons` (defined: lessons)",
    ),
    (
        "wrong_type.toml",
        "wrong_type.toml:36:20: `rules[0].teacher_override` must be true or false, found string",
    ),
];

#[test]
fn every_broken_policy_gives_a_precise_error_and_exit_1() {
    let files: Vec<String> = std::fs::read_dir(bad_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    assert!(files.len() >= 15, "corpus has {} files", files.len());
    // Every file in the corpus has an expectation, and vice versa.
    for f in &files {
        assert!(
            CORPUS.iter().any(|(n, _)| n == f),
            "{f} has no expected diagnostic"
        );
    }
    let mut failures = Vec::new();
    for (file, want) in CORPUS {
        let out = bin()
            .current_dir(bad_dir())
            .args(["policy", "check", file])
            .output()
            .unwrap();
        let err = stdout(&out);
        if out.status.code() != Some(1) {
            failures.push(format!("{file}: exit {:?}\n{err}", out.status.code()));
        }
        if !err.lines().any(|l| l == *want) {
            failures.push(format!("{file}: missing\n  {want}\ngot\n{err}"));
        }
        if err.contains("panicked") {
            failures.push(format!("{file}: panicked\n{err}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn several_files_are_all_checked_and_any_error_fails() {
    let wcs = repo().join("examples/policies/wcs.toml");
    let bad = bad_dir().join("bad_action.toml");
    let out = bin()
        .arg("policy")
        .arg("check")
        .arg(&wcs)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stdout(&out);
    assert!(err.contains("wcs.toml: ok"), "{err}");
    assert!(err.contains("bad_action.toml:30:10:"), "{err}");
}

#[test]
fn both_example_policies_pass_check() {
    for name in ["wcs.toml", "wpt.toml"] {
        let out = bin()
            .current_dir(repo().join("examples/policies"))
            .args(["policy", "check", name])
            .output()
            .unwrap();
        let err = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {err}");
        assert!(
            err.contains(&format!("{name}: ok")) && err.contains("0 warnings"),
            "{err}"
        );
    }
}

#[test]
fn shadowed_rule_is_a_warning_and_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shadow.toml");
    std::fs::write(
        &path,
        "version = 1\n[school]\nname = \"S\"\ntimezone = \"Europe/London\"\n[[documents]]\nid = \"d\"\ntitle = \"D\"\n\
         [groups.all]\nunidentified = true\ndefault = \"allow\"\n\
         [[rules]]\nid = \"webmail\"\naction = \"block\"\ndocument = \"d\"\nclause = \"1\"\ndomains = [\"mail.example\"]\n\
         [[rules]]\nid = \"inbox\"\naction = \"block\"\ndocument = \"d\"\nclause = \"2\"\nurl_prefixes = [\"https://www.mail.example/inbox\"]\n",
    )
    .unwrap();
    let out = bin()
        .current_dir(dir.path())
        .args(["policy", "check", "shadow.toml"])
        .output()
        .unwrap();
    let err = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.lines().any(|l| l
            == "shadow.toml:18:6: warning: `rules[1]` (`inbox`) can never match: `rules[0]` (`webmail`) comes first and matches every request it would"),
        "{err}"
    );
}

fn explain_json(args: &[&str]) -> serde_json::Value {
    let out = explain_wcs().arg("--json").args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn explain_json_for_a_blocked_download() {
    let v = explain_json(&[
        "--group",
        "students",
        "--at",
        "2026-10-05 09:30",
        "https://downloads.example.com/tools/setup.exe?x=1",
    ]);
    assert_eq!(v["verdict"], "block");
    assert_eq!(v["rule"], "software-downloads");
    assert_eq!(v["document"], "wcs");
    assert_eq!(v["clause"], "4.3.4");
    assert!(v["message"].as_str().unwrap().contains("4.3.4"));
    assert_eq!(v["categories"], serde_json::json!([]));
    assert_eq!(
        v["alert"],
        serde_json::json!({ "kind": "conduct", "severity": 1 })
    );
    assert_eq!(v["override"], false);
}

#[test]
fn explain_json_for_guest_wifi_overnight_and_unidentified() {
    // 22:30 local on a Monday in BST is 21:30Z; the guest range is 10.50.0.0/16.
    let v = explain_json(&[
        "--ip",
        "10.50.3.7",
        "--at",
        "2026-10-05T21:30:00Z",
        "example.org",
    ]);
    assert_eq!(v["verdict"], "block");
    assert_eq!(v["rule"], "guests-overnight");
    assert_eq!(v["clause"], "4.2.3");
    assert_eq!(v["alert"], serde_json::Value::Null);
    let v = explain_json(&[
        "--ip",
        "10.50.3.7",
        "--at",
        "2026-10-05 21:30",
        "example.org",
    ]);
    assert_eq!(v["verdict"], "allow");
    assert_eq!(v["rule"], serde_json::Value::Null);
    let v = explain_json(&[
        "--ip",
        "192.168.4.4",
        "--at",
        "2026-10-05 10:00",
        "example.org",
    ]);
    assert_eq!(
        (v["verdict"].as_str(), v["clause"].as_str()),
        (Some("block"), Some("2.1"))
    );
}

#[test]
fn explain_human_output_has_the_trace() {
    let out = explain_wcs()
        .args(["--group", "staff", "--at", "2026-10-05 12:00"])
        .arg("https://portal.wcs.london/")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(text.starts_with("ALLOW for portal.wcs.london"), "{text}");
    assert!(text.contains("rules[0] school-services: MATCHED"), "{text}");
    assert!(text.contains("clause 4.1"), "{text}");
}

#[test]
fn explain_rejects_unknown_groups_and_missing_catalogs() {
    let out = bin()
        .current_dir(repo())
        .args([
            "explain",
            "--policy",
            "examples/policies/wcs.toml",
            "--group",
            "pupils",
            "example.org",
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("unknown group `pupils`"),
        "{}",
        stderr(&out)
    );
    let out = bin()
        .current_dir(repo())
        .args([
            "policy",
            "check",
            "examples/policies/wcs.toml",
            "--catalog",
            "/nonexistent/catalog",
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("--catalog /nonexistent/catalog"),
        "{}",
        stderr(&out)
    );
}

/// A catalog built with `hallpass catalog import` classifies the target, and a policy
/// naming a category the catalog lacks fails `policy check` at its line and column.
#[test]
fn catalog_classifies_targets_and_checks_category_names() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("webmail.txt");
    std::fs::write(&list, "gmail.com\nmail.yahoo.com\n").unwrap();
    let index = dir.path().join("small.hpidx");
    let out = bin()
        .args(["catalog", "import", "--category", "webmail", "--output"])
        .arg(&index)
        .arg(&list)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        r#"version = 1
[school]
name = "Catalog test school"
timezone = "Europe/London"
[[documents]]
id = "wcs"
title = "WCS ICT Policy"
version = "2023"
[groups.students]
roles = ["student"]
default = "allow"
[groups.unidentified]
unidentified = true
default = "block"
[[rules]]
id = "webmail"
action = "block"
document = "wcs"
clause = "4.5.1"
categories = ["webmail"]
"#,
    )
    .unwrap();
    let out = bin()
        .args(["explain", "--policy"])
        .arg(&policy)
        .arg("--catalog")
        .arg(&index)
        .args(["--group", "students", "--at", "2026-11-23 10:30", "--json"])
        .arg("https://www.gmail.com/mail/u/0/")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "block");
    assert_eq!(json["clause"], "4.5.1");
    assert_eq!(json["categories"], serde_json::json!(["webmail"]));

    // The small catalog has no `adult` category, which wcs.toml names in rule 3.
    let out = bin()
        .current_dir(repo())
        .args(["policy", "check", "examples/policies/wcs.toml", "--catalog"])
        .arg(&index)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("unknown category `adult` (not in the category catalog)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn help_is_written_for_network_managers() {
    for args in [
        &["policy", "check", "--help"][..],
        &["explain", "--help"][..],
    ] {
        let out = bin().args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0));
        assert!(text.contains("Examples:"), "{text}");
    }
}

#[test]
fn output_into_a_closed_pipe_stops_quietly() {
    // `hallpass explain ... | head -0`: the reader is gone before the first line.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = explain_wcs()
        .args([
            "--group",
            "students",
            "--at",
            "2026-10-05 09:30",
            "https://downloads.example.com/tools/setup.exe",
        ])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert_eq!(err, "", "a closed stdout is not an error to report");
}

/// A pipe whose reading end is already closed: every write to it fails with EPIPE.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

#[test]
fn policy_check_into_closed_pipes_never_panics() {
    // `hallpass policy check a b c 2>&1 | head -0`: both streams closed. It used to
    // panic (exit 101) writing the first diagnostic to stderr.
    let writer = closed_pipe();
    let out = bin()
        .current_dir(bad_dir())
        .args([
            "policy",
            "check",
            "no-such-a.toml",
            "no-such-b.toml",
            "bad_action.toml",
        ])
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .output()
        .unwrap();
    // The unreadable files' errors are lost on the closed stderr; the first result on the
    // closed stdout ends the command.
    assert_eq!(out.status.code(), Some(141));

    // Only stderr closed: the results still reach stdout in full.
    let out = bin()
        .current_dir(bad_dir())
        .args(["policy", "check", "no-such-a.toml", "bad_action.toml"])
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("bad_action.toml:30:10:"),
        "{}",
        stdout(&out)
    );

    // Only stdout closed: ends quietly at the first result with 141.
    let out = bin()
        .current_dir(repo())
        .args(["policy", "check", "examples/policies/wcs.toml"])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn policy_check_results_go_to_stdout_and_read_errors_to_stderr() {
    let out = bin()
        .current_dir(bad_dir())
        .args(["policy", "check", "no-such.toml", "bad_action.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (out_text, err_text) = (stdout(&out), stderr(&out));
    assert!(
        out_text
            .lines()
            .any(|l| l.starts_with("bad_action.toml:30:10: ")),
        "{out_text}"
    );
    assert!(
        out_text.lines().any(|l| l == "bad_action.toml: 1 error"),
        "{out_text}"
    );
    assert!(!out_text.contains("no-such"), "{out_text}");
    assert_eq!(
        err_text.trim_end(),
        "error: cannot read no-such.toml: No such file or directory (os error 2)"
    );
}

#[test]
fn a_declaration_text_file_is_read_beside_the_policy() {
    let wcs = std::fs::read_to_string(repo().join("examples/policies/wcs.toml")).unwrap();
    let start = wcs.find("text = \"\"\"").unwrap();
    let end = start + wcs[start..].find("\"\"\"\n\n").unwrap() + 4;
    let policy = format!(
        "{}text_file = \"declaration.txt\"\n{}",
        &wcs[..start],
        &wcs[end..]
    );
    let line = policy[..policy.find("text_file").unwrap()].lines().count() + 1;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, &policy).unwrap();
    // Run elsewhere: the file is found beside the policy, not in the working directory.
    let check = || {
        bin()
            .current_dir(repo())
            .args(["policy", "check"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = check();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let want = format!(
        "{}:{line}:13: `documents[0].declaration.text_file`: cannot read `declaration.txt`: ",
        path.display()
    );
    assert!(stdout(&out).contains(&want), "{}", stdout(&out));
    std::fs::write(
        dir.path().join("declaration.txt"),
        "I agree to the WCS ICT Policy.\n",
    )
    .unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}
