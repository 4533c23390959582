//! The list format: the built-in lists parse, mistakes are refused naming FILE:LINE and
//! what is wrong, and a school's file adds to or replaces the built-in ones.

use hallpass_detect::{Lists, Theme, builtin_lists, parse_list};

use crate::found;

#[test]
fn the_builtin_lists_parse_and_cover_every_theme_in_english() {
    let mut themes = std::collections::BTreeSet::new();
    for (name, text) in builtin_lists() {
        let phrases = parse_list(name, text).unwrap_or_else(|e| panic!("{e}"));
        assert!(!phrases.is_empty(), "{name} has phrases");
        if name == "en.txt" {
            themes.extend(phrases.iter().map(|p| p.theme));
        }
    }
    assert_eq!(themes.len(), Theme::SAFEGUARDING.len(), "{themes:?}");
}

#[test]
fn a_line_is_theme_severity_phrase_with_comments_and_blanks() {
    let phrases = parse_list(
        "school.txt",
        "# our own\n\n  drugs 2 nos canisters  \nweapons\t4\tflick knife\n",
    )
    .unwrap();
    assert_eq!(phrases.len(), 2);
    assert_eq!(phrases[0].theme, Theme::Drugs);
    assert_eq!(phrases[0].severity, 2);
    assert_eq!(phrases[0].phrase, "nos canisters");
    assert_eq!(phrases[0].line, 3);
    assert_eq!(phrases[1].theme, Theme::Weapons);
    assert_eq!(phrases[1].phrase, "flick knife");
    assert_eq!(phrases[1].list, "school.txt");
}

#[test]
fn mistakes_name_the_file_line_and_problem() {
    for (text, expected) in [
        (
            "drugs 2 ok\nselfharm 5 x y\n",
            "school.txt:2: unknown theme `selfharm` (expected one of: self-harm, extremism, \
             bullying, sexual-exploitation, drugs, weapons, hate, adult, offensive-language)",
        ),
        (
            "drugs 6 too much\n",
            "school.txt:1: severity `6` is not a whole number from 1 to 5",
        ),
        (
            "drugs 0 none\n",
            "school.txt:1: severity `0` is not a whole number from 1 to 5",
        ),
        (
            "drugs high weed\n",
            "school.txt:1: severity `high` is not a whole number from 1 to 5",
        ),
        (
            "# c\ndrugs 3\n",
            "school.txt:2: empty phrase (expected `THEME SEVERITY PHRASE`)",
        ),
        (
            "drugs 3    \n",
            "school.txt:1: empty phrase (expected `THEME SEVERITY PHRASE`)",
        ),
        (
            "drugs\n",
            "school.txt:1: missing severity and phrase (expected `THEME SEVERITY PHRASE`)",
        ),
        (
            "drugs 3 !!! 42\n",
            "school.txt:1: phrase `!!! 42` has no letters to match (numbers and symbols alone \
             are not words)",
        ),
    ] {
        let error = parse_list("school.txt", text).unwrap_err();
        assert_eq!(error.to_string(), expected, "for {text:?}");
    }
}

#[test]
fn a_file_with_a_mistake_changes_nothing() {
    let mut lists = Lists::builtin().unwrap();
    let before: Vec<String> = lists.names().map(str::to_owned).collect();
    assert!(lists.add("en.txt", "drugs 3 fine\nbad 3 line\n").is_err());
    let after: Vec<String> = lists.names().map(str::to_owned).collect();
    assert_eq!(before, after);
    assert!(!found(&lists.matcher().unwrap(), "kill myself").is_empty());
}

#[test]
fn a_school_file_adds_or_replaces_by_name() {
    let mut lists = Lists::builtin().unwrap();
    lists.add("school.txt", "drugs 2 nos canisters\n").unwrap();
    let m = lists.matcher().unwrap();
    assert_eq!(
        found(&m, "n0s canisters"),
        vec![(Theme::Drugs, 2, "nos canisters".to_owned())]
    );
    assert!(!found(&m, "kill myself").is_empty(), "built-in en.txt kept");

    lists.add("en.txt", "weapons 4 flick knife\n").unwrap();
    let m = lists.matcher().unwrap();
    assert_eq!(found(&m, "kill myself"), vec![], "en.txt replaced");
    assert_eq!(
        found(&m, "flick knife"),
        vec![(Theme::Weapons, 4, "flick knife".to_owned())]
    );
    assert!(!found(&m, "zabić się").is_empty(), "pl.txt kept");
}

#[test]
fn the_same_phrase_twice_in_one_theme_is_kept_once_at_its_highest_severity() {
    let mut lists = Lists::empty();
    lists.add("a.txt", "adult 2 porno\n").unwrap();
    lists
        .add("b.txt", "adult 3 PORNO\nweapons 1 porno\n")
        .unwrap();
    let m = lists.matcher().unwrap();
    assert_eq!(
        found(&m, "porno"),
        vec![
            (Theme::Adult, 3, "PORNO".to_owned()),
            (Theme::Weapons, 1, "porno".to_owned())
        ]
    );
}
