//! Whole words and phrases, not substrings: the Scunthorpe set both ways.

use hallpass_detect::{Lists, Theme};

use crate::{builtin, found};

/// A matcher over just the words innocent words contain, so a miss here is the
/// matching's doing, not a list's.
fn substring_bait() -> hallpass_detect::Matcher {
    let mut lists = Lists::empty();
    lists
        .add(
            "bait.txt",
            "adult 3 cunt\nadult 3 sex\nsexual-exploitation 5 rapist\nsexual-exploitation 5 rape\n\
             adult 2 ass\nself-harm 5 kill\nweapons 3 gun\n",
        )
        .unwrap();
    lists.matcher().unwrap()
}

#[test]
fn innocent_words_do_not_match_what_they_contain() {
    let m = substring_bait();
    for text in [
        "Scunthorpe",
        "Essex",
        "therapist",
        "grape",
        "assassin's creed history homework",
        "skills",
        "Middlesex",
        "classic",
        "Sussex",
        "drape",
        "begun",
        "gunther",
        "skillet",
    ] {
        assert_eq!(found(&m, text), vec![], "{text:?} must match nothing");
    }
}

#[test]
fn the_same_words_match_on_their_own_and_through_obfuscation() {
    let m = substring_bait();
    for (text, phrase) in [
        ("scunthorpe and cunt", "cunt"),
        ("essex sex", "sex"),
        ("the rapist", "rapist"),
        ("r a p e", "rape"),
        ("kiiilll", "kill"),
        ("k1ll", "kill"),
        ("KILL!", "kill"),
        ("the g.u.n", "gun"),
        ("ＳＥＸ", "sex"),
        ("\u{455}ex", "sex"), // Cyrillic ѕ
        ("sèx", "sex"),
    ] {
        let got = found(&m, text);
        assert!(
            got.iter().any(|(_, _, p)| p == phrase),
            "{text:?} must match {phrase:?}, got {got:?}"
        );
    }
}

#[test]
fn real_phrases_match_through_obfuscation() {
    let m = builtin();
    for text in [
        "k1ll mys3lf",
        "s u i c i d e",
        "S.U.I.C.I.D.E",
        "kiiilll myyyself",
        "killmyself",
        "kill   myself!!!",
        "KiLl MySeLf",
        "k\u{456}ll mys\u{435}lf",
        "ｋｉｌｌ ｍｙｓｅｌｆ",
        "$uicide",
        "k!ll myself",
    ] {
        let got = found(&m, text);
        assert!(
            got.iter().any(|(t, s, _)| *t == Theme::SelfHarm && *s >= 4),
            "{text:?} must match a self-harm phrase, got {got:?}"
        );
    }
}

#[test]
fn a_phrase_needs_all_its_words_in_order() {
    let m = builtin();
    assert_eq!(found(&m, "kill time myself"), vec![]);
    assert_eq!(found(&m, "myself kill"), vec![]);
    assert_eq!(found(&m, "skill myself"), vec![]);
    assert_eq!(found(&m, "kill myselfie"), vec![]);
}

#[test]
fn several_phrases_in_one_text_are_all_found() {
    let m = builtin();
    let got = found(&m, "buy cocaine then kill myself");
    let phrases: Vec<&str> = got.iter().map(|(_, _, p)| p.as_str()).collect();
    assert!(phrases.contains(&"cocaine"), "{got:?}");
    assert!(phrases.contains(&"buy cocaine"), "{got:?}");
    assert!(phrases.contains(&"kill myself"), "{got:?}");
}

#[test]
fn accents_are_optional_both_ways() {
    let m = builtin();
    for text in [
        "zabić się",
        "zabic sie",
        "ZABIĆ SIĘ",
        "vreau sa mor",
        "mátate",
        "matate",
    ] {
        assert!(!found(&m, text).is_empty(), "{text:?} must match");
    }
}

#[test]
fn the_scratch_shows_the_normal_form_that_was_matched() {
    let m = builtin();
    let mut scratch = hallpass_detect::Scratch::new();
    let n = m.find("Kiiilll  MYS3LF!!", &mut scratch).count();
    assert_eq!(n, 1);
    assert_eq!(scratch.normal_form(), " kil myself ");
}
