//! The acceptable-use declaration (000 §14): `[documents.declaration]` and
//! `[declarations] restricted_group`, their errors at FILE:LINE:COL, and what is pending.

use hallpass_policy::{CategoryVocab, PolicyDoc};

const HEAD: &str = "version = 1\n[school]\nname = \"S\"\ntimezone = \"Europe/London\"\n";
const GROUPS: &str = "[groups.everyone]\nunidentified = true\ndefault = \"block\"\n\
                      [groups.pending]\ndefault = { action = \"block\", document = \"d\", clause = \"14\" }\n";

fn errors(text: &str) -> Vec<String> {
    match PolicyDoc::parse("t.toml", text) {
        Ok(doc) => match doc.compile(&CategoryVocab::open()) {
            Ok((_, w)) => panic!("expected errors, got warnings {w:?}"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        },
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_examples_name_their_declarations_and_restricted_groups() {
    let wcs = super::compile("wcs.toml", super::WCS);
    let d = wcs.declaration("wcs").unwrap();
    assert_eq!(
        d.version, "2023",
        "the document's version is the declaration's"
    );
    assert!(d.text.contains("(14)"), "{}", d.text);
    let restricted = wcs.restricted_groups().unwrap();
    assert_eq!(wcs.group_names(restricted), ["declaration-pending"]);
    let wpt = super::compile("wpt.toml", super::WPT);
    assert_eq!(wpt.declarations().len(), 1);
    assert_eq!(
        wpt.group_names(wpt.restricted_groups().unwrap()),
        ["agreement-pending"]
    );
}

#[test]
fn pending_follows_the_accepted_version() {
    let text = format!(
        "{HEAD}[[documents]]\nid = \"d\"\ntitle = \"D\"\nversion = \"3\"\n\
         [documents.declaration]\ntext = \"I agree.\"\n\
         [[documents]]\nid = \"e\"\ntitle = \"E\"\n\
         [documents.declaration]\ntext = \"I also agree.\"\nversion = \"e-1\"\n\
         [declarations]\nrestricted_group = \"pending\"\n{GROUPS}"
    );
    let (policy, _) = PolicyDoc::parse("t.toml", &text)
        .unwrap()
        .compile(&CategoryVocab::open())
        .unwrap();
    let pending = |accepted: &[(&str, &str)]| -> Vec<String> {
        policy
            .pending_declarations(|doc, version| accepted.contains(&(doc, version)))
            .map(|d| format!("{}@{}", d.document, d.version))
            .collect()
    };
    assert_eq!(pending(&[]), ["d@3", "e@e-1"]);
    assert_eq!(pending(&[("d", "3")]), ["e@e-1"]);
    assert_eq!(
        pending(&[("d", "2"), ("e", "e-1")]),
        ["d@3"],
        "an old version asks again"
    );
    assert!(pending(&[("d", "3"), ("e", "e-1")]).is_empty());
    assert_eq!(
        policy.declaration("d").unwrap().title,
        "Acceptable use declaration: D"
    );
}

#[test]
fn a_declaration_needs_a_restricted_group_that_exists_and_fails_closed() {
    let doc = "[[documents]]\nid = \"d\"\ntitle = \"D\"\nversion = \"1\"\n[documents.declaration]\ntext = \"I agree.\"\n";
    assert_eq!(
        errors(&format!("{HEAD}{doc}{GROUPS}")),
        [
            "t.toml:9:1: a document has a `declaration` but `[declarations]` names no `restricted_group`: name the group that applies until a person accepts (fail closed, as for unidentified clients)"
        ]
    );
    assert_eq!(
        errors(&format!(
            "{HEAD}{doc}[declarations]\nrestricted_group = \"pendin\"\n{GROUPS}"
        )),
        [
            "t.toml:12:20: `declarations.restricted_group`: unknown group `pendin` (defined: everyone, pending)"
        ]
    );
    assert_eq!(
        errors(&format!(
            "{HEAD}{doc}[declarations]\nrestricted_group = \"open\"\n{GROUPS}[groups.open]\ndefault = \"allow\"\n"
        )),
        [
            "t.toml:12:20: `declarations.restricted_group`: group `open` allows by default; the group for people who have not accepted the declaration must fail closed (default \"block\")"
        ]
    );
}

#[test]
fn declaration_fields_are_checked_where_they_are_written() {
    let text = format!(
        "{HEAD}[[documents]]\nid = \"d\"\ntitle = \"D\"\n\
         [documents.declaration]\ntext = \"I agree.\"\ntext_file = \"aup.txt\"\ncolour = 1\n\
         [[documents]]\nid = \"e\"\ntitle = \"E\"\n[documents.declaration]\ntitle = \"E's\"\n\
         [declarations]\nrestricted_group = \"pending\"\n{GROUPS}"
    );
    assert_eq!(
        errors(&text),
        [
            "t.toml:8:1: `documents[0].declaration`: no `version`, and the document has none: people accept a version, so a new one asks them again",
            "t.toml:9:8: `documents[0].declaration`: give `text` or `text_file`, not both",
            "t.toml:11:1: `documents[0].declaration.colour`: unknown key (expected one of: title, text, text_file, version)",
            "t.toml:15:1: `documents[1].declaration`: missing `text` (the declaration itself) or `text_file` (a file beside the policy)",
            "t.toml:15:1: `documents[1].declaration`: no `version`, and the document has none: people accept a version, so a new one asks them again",
        ]
    );
}

#[test]
fn a_text_file_is_read_through_the_caller_and_errors_point_at_it() {
    let text = format!(
        "{HEAD}[[documents]]\nid = \"d\"\ntitle = \"D\"\nversion = \"1\"\n\
         [documents.declaration]\ntext_file = \"aup.txt\"\n\
         [declarations]\nrestricted_group = \"pending\"\n{GROUPS}"
    );
    let mut doc = PolicyDoc::parse("t.toml", &text).unwrap();
    let missing = doc
        .clone()
        .read_declaration_files(|_| Err("No such file or directory".into()))
        .unwrap_err();
    assert_eq!(
        missing.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "t.toml:10:13: `documents[0].declaration.text_file`: cannot read `aup.txt`: No such file or directory"
        ]
    );
    let mut asked = Vec::new();
    doc.read_declaration_files(|path| {
        asked.push(path.to_string());
        Ok("I agree to the AUP.\n".into())
    })
    .unwrap();
    assert_eq!(asked, ["aup.txt"]);
    let (policy, _) = doc.compile(&CategoryVocab::open()).unwrap();
    assert_eq!(policy.declaration("d").unwrap().text, "I agree to the AUP.");
}

#[test]
fn no_declaration_means_nobody_is_restricted() {
    let text = format!("{HEAD}[[documents]]\nid = \"d\"\ntitle = \"D\"\n{GROUPS}");
    let (policy, _) = PolicyDoc::parse("t.toml", &text)
        .unwrap()
        .compile(&CategoryVocab::open())
        .unwrap();
    assert!(policy.restricted_groups().is_none());
    assert_eq!(policy.pending_declarations(|_, _| false).count(), 0);
}
