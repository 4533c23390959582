//! `hallpass detect` through the real binary: text and `--json` output, texts from
//! standard input, a school's `--lists` directory, and a bad list file named by
//! FILE:LINE.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn detect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .arg("detect")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn text_output_names_theme_severity_phrase_and_list_line() {
    let o = detect(&["how to k1ll mys3lf", "Scunthorpe United"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "how to k1ll mys3lf");
    assert!(
        lines[1].starts_with(
            "  self-harm (self-harm and suicide), severity 5: \"kill myself\" (en.txt:"
        ),
        "{out}"
    );
    assert_eq!(lines[2], "Scunthorpe United");
    assert_eq!(lines[3], "  no risk phrases");
    assert_eq!(lines.len(), 4, "{out}");
}

#[test]
fn json_is_one_object_per_text() {
    let o = detect(&["--json", "buy c0caine", "grape juice"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0],
        serde_json::json!({"text": "buy c0caine", "matches": [
            {"theme": "drugs", "severity": 4, "phrase": "buy cocaine"},
            {"theme": "drugs", "severity": 3, "phrase": "cocaine"},
        ]})
    );
    assert_eq!(
        lines[1],
        serde_json::json!({"text": "grape juice", "matches": []})
    );
    assert!(out.starts_with("{\"text\":"), "text comes first: {out}");
}

#[test]
fn texts_come_from_standard_input_when_none_are_given() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(["detect", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("s u i c i d e\nzabić się\nhomework\n".as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let themes: Vec<Vec<String>> = stdout(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["matches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["theme"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(
        themes,
        vec![
            vec!["self-harm".to_owned()],
            vec!["self-harm".to_owned()],
            vec![]
        ]
    );
}

#[test]
fn a_lists_dir_adds_and_replaces_by_file_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("school.txt"),
        "# ours\ndrugs 2 nos canisters\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("en.txt"), "weapons 4 flick knife\n").unwrap();
    std::fs::write(dir.path().join("notes.md"), "not a list: ignored\n").unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let o = detect(&[
        "--lists",
        dir_arg,
        "--json",
        "n0s canisters",
        "kill myself",
        "fl1ck knife",
        "zabić się",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let phrases: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["matches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["phrase"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    // en.txt was replaced (no "kill myself"); pl.txt is still built in.
    assert_eq!(phrases, ["nos canisters", "", "flick knife", "zabić się"]);
}

#[test]
fn a_bad_list_file_is_refused_naming_file_and_line() {
    for (text, reason) in [
        (
            "drugs 2 ok\n\nselfharm 5 kill me\n",
            ":3: unknown theme `selfharm` (expected one of: self-harm,",
        ),
        (
            "# c\nweapons 9 knife\n",
            ":2: severity `9` is not a whole number from 1 to 5",
        ),
        ("adult 3\n", ":1: empty phrase"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("school.txt");
        std::fs::write(&file, text).unwrap();
        let o = detect(&["--lists", dir.path().to_str().unwrap(), "kill myself"]);
        assert_eq!(o.status.code(), Some(2), "{text:?}");
        assert_eq!(stdout(&o), "", "nothing is checked with a bad list");
        let err = stderr(&o);
        let expected = format!("error: {}{reason}", file.display());
        assert!(
            err.starts_with(&expected),
            "{err:?} should start with {expected:?}"
        );
    }
}

#[test]
fn a_lists_dir_that_does_not_exist_is_an_error() {
    let o = detect(&["--lists", "/nonexistent/hallpass-detect", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/hallpass-detect"),
        "{}",
        stderr(&o)
    );
}
