//! Diagnostics from the library: positions, field names, all errors at once, and
//! category names checked against a catalog's vocabulary.

use hallpass_policy::{CategoryVocab, PolicyDoc, Severity};

const HEAD: &str = "version = 1\n[school]\nname = \"S\"\ntimezone = \"Europe/London\"\n[[documents]]\nid = \"d\"\ntitle = \"D\"\n[groups.everyone]\nunidentified = true\ndefault = \"allow\"\n";

fn errors(text: &str) -> Vec<String> {
    match PolicyDoc::parse("t.toml", text) {
        Ok(doc) => match doc.compile(&super::ut1_vocab()) {
            Ok((_, w)) => panic!("expected errors, got warnings {w:?}"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        },
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn unknown_category_is_an_error_only_against_a_catalog() {
    let text = format!(
        "{HEAD}[[rules]]\nid = \"r\"\naction = \"block\"\ndocument = \"d\"\nclause = \"1\"\ncategories = [\"adult\", \"pron\"]\n"
    );
    let doc = PolicyDoc::parse("t.toml", &text).unwrap();
    assert!(doc.compile(&CategoryVocab::open()).is_ok());
    assert_eq!(
        errors(&text),
        [
            "t.toml:16:24: `rules[0].categories[1]`: unknown category `pron` (not in the category catalog)"
        ]
    );
}

#[test]
fn every_error_is_reported_at_once_in_file_order() {
    let text = format!(
        "{HEAD}[periods.p]\ndays = [\"mon\", \"funday\"]\ntimes = [\"9:00-25:00\"]\n\
         [[rules]]\nid = \"r\"\naction = \"block\"\ndocument = \"d\"\nclause = \"1\"\nduring = [\"q\"]\ncolour = \"red\"\n"
    );
    assert_eq!(
        errors(&text),
        [
            "t.toml:12:16: `periods.p.days[1]`: `funday` is not a day (mon, tue, wed, thu, fri, sat, sun, weekdays, weekends, daily)",
            "t.toml:13:10: `periods.p.times[0]`: malformed time range `9:00-25:00` (expected \"HH:MM-HH:MM\", e.g. \"08:50-10:30\" or \"22:00-06:00\")",
            "t.toml:19:11: `rules[0].during[0]`: unknown period `q` (defined: p)",
            "t.toml:20:1: `rules[0].colour`: unknown key (expected one of: id, action, document, clause, message, categories, domains, url_prefixes, file_types, groups, except_groups, during, outside, teacher_override, alert)",
        ]
    );
}

#[test]
fn shadowed_rule_warning_points_at_the_later_rule() {
    let text = format!(
        "{HEAD}[[rules]]\nid = \"all-games\"\naction = \"block\"\ndocument = \"d\"\nclause = \"1\"\ncategories = [\"games\", \"manga\"]\n\
         [[rules]]\nid = \"games\"\naction = \"warn\"\ndocument = \"d\"\nclause = \"2\"\ncategories = [\"games\"]\ngroups = [\"everyone\"]\n\
         [[rules]]\nid = \"games-later\"\naction = \"block\"\ndocument = \"d\"\nclause = \"3\"\ncategories = [\"games\"]\nteacher_override = true\n"
    );
    let doc = PolicyDoc::parse("t.toml", &text).unwrap();
    let (_, warnings) = doc.compile(&super::ut1_vocab()).unwrap();
    let w: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    // `games` is covered; so is `games-later` (the earlier rule cannot be lifted by an
    // override, but a grant lifts both).
    assert_eq!(
        w,
        [
            "t.toml:18:6: warning: `rules[1]` (`games`) can never match: `rules[0]` (`all-games`) comes first and matches every request it would",
            "t.toml:25:6: warning: `rules[2]` (`games-later`) can never match: `rules[0]` (`all-games`) comes first and matches every request it would",
        ]
    );
    assert!(warnings.iter().all(|d| d.severity == Severity::Warning));
}

#[test]
fn overridable_earlier_rule_does_not_shadow_a_fixed_one() {
    // A teacher override can lift the first rule, so the second still decides then.
    let text = format!(
        "{HEAD}[[rules]]\nid = \"a\"\naction = \"block\"\ndocument = \"d\"\nclause = \"1\"\ncategories = [\"games\"]\nteacher_override = true\n\
         [[rules]]\nid = \"b\"\naction = \"block\"\ndocument = \"d\"\nclause = \"2\"\ncategories = [\"games\"]\n"
    );
    let (_, warnings) = PolicyDoc::parse("t.toml", &text)
        .unwrap()
        .compile(&super::ut1_vocab())
        .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn invalid_toml_is_located() {
    let e = errors("version = 1\n[school\nname = 1\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("t.toml:2:8: invalid TOML"), "{}", e[0]);
}

#[test]
fn input_that_panicked_toml_edit_0_23_is_an_error() {
    // Found by `props::parser_is_total_on_junk`.
    let e = errors("==\n[\"\n.");
    assert!(
        !e.is_empty() && e.iter().all(|l| l.starts_with("t.toml:")),
        "{e:?}"
    );
}

#[test]
fn format_reference_example_is_a_valid_policy() {
    let readme = include_str!("../../../../examples/policies/README.md");
    let start = readme.find("```toml\n").unwrap() + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let doc = PolicyDoc::parse("README.md", &readme[start..end]).unwrap();
    let (_, warnings) = doc.compile(&super::ut1_vocab()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}
