//! Precision and recall of the built-in lists on the labelled corpus in
//! `tests/corpus/` (see its README), per theme and overall. Printed with
//! `cargo test -p hallpass-detect -- --nocapture`.

use std::collections::BTreeSet;

use hallpass_detect::{Scratch, Theme};

use crate::builtin;

/// Overall floors: the corpus holds obfuscated texts and texts phrased in ways the lists
/// do not contain, and innocent look-alikes, so neither is 1.0.
const OVERALL_PRECISION: f64 = 0.9;
const OVERALL_RECALL: f64 = 0.9;
/// Per theme, over fewer texts, one miss weighs more.
const THEME_PRECISION: f64 = 0.8;
const THEME_RECALL: f64 = 0.8;

const FILES: [(&str, &str); 5] = [
    ("en.txt", include_str!("../corpus/en.txt")),
    ("pl.txt", include_str!("../corpus/pl.txt")),
    ("ro.txt", include_str!("../corpus/ro.txt")),
    ("es.txt", include_str!("../corpus/es.txt")),
    ("innocent.txt", include_str!("../corpus/innocent.txt")),
];

#[derive(Default, Clone, Copy)]
struct Counts {
    true_pos: u32,
    false_pos: u32,
    false_neg: u32,
}

impl Counts {
    fn precision(self) -> f64 {
        ratio(self.true_pos, self.true_pos + self.false_pos)
    }
    fn recall(self) -> f64 {
        ratio(self.true_pos, self.true_pos + self.false_neg)
    }
}

fn ratio(n: u32, d: u32) -> f64 {
    if d == 0 {
        1.0
    } else {
        f64::from(n) / f64::from(d)
    }
}

#[test]
fn precision_and_recall_per_theme_meet_the_floors() {
    let matcher = builtin();
    let mut scratch = Scratch::new();
    let mut per_theme = [Counts::default(); Theme::SAFEGUARDING.len()];
    let mut texts = 0;
    let mut misses = Vec::new();
    for (file, text) in FILES {
        for (index, line) in text.lines().enumerate() {
            let (label, sample) = line
                .split_once(" | ")
                .unwrap_or_else(|| panic!("{file}:{}: expected `THEME | text`", index + 1));
            let expected = match label {
                "none" => None,
                name => Some(
                    Theme::from_name(name)
                        .unwrap_or_else(|| panic!("{file}:{}: unknown theme {name}", index + 1)),
                ),
            };
            texts += 1;
            let got: BTreeSet<Theme> = matcher
                .find(sample, &mut scratch)
                .map(|p| p.theme)
                .collect();
            for (i, theme) in Theme::SAFEGUARDING.into_iter().enumerate() {
                let want = expected == Some(theme);
                let have = got.contains(&theme);
                match (want, have) {
                    (true, true) => per_theme[i].true_pos += 1,
                    (false, true) => per_theme[i].false_pos += 1,
                    (true, false) => per_theme[i].false_neg += 1,
                    (false, false) => {}
                }
            }
            if got.iter().copied().ne(expected) {
                misses.push(format!("  {file}:{}: {line:?} found {got:?}", index + 1));
            }
        }
    }

    let mut overall = Counts::default();
    println!("detection corpus: {texts} texts");
    println!(
        "{:<20} {:>4} {:>4} {:>4} {:>9} {:>7}",
        "theme", "tp", "fp", "fn", "precision", "recall"
    );
    for (theme, c) in Theme::SAFEGUARDING.into_iter().zip(per_theme) {
        println!(
            "{:<20} {:>4} {:>4} {:>4} {:>9.3} {:>7.3}",
            theme.name(),
            c.true_pos,
            c.false_pos,
            c.false_neg,
            c.precision(),
            c.recall()
        );
        overall.true_pos += c.true_pos;
        overall.false_pos += c.false_pos;
        overall.false_neg += c.false_neg;
    }
    println!(
        "{:<20} {:>4} {:>4} {:>4} {:>9.3} {:>7.3}",
        "overall",
        overall.true_pos,
        overall.false_pos,
        overall.false_neg,
        overall.precision(),
        overall.recall()
    );
    println!(
        "texts not labelled as found ({}):\n{}",
        misses.len(),
        misses.join("\n")
    );

    assert!(
        overall.precision() >= OVERALL_PRECISION,
        "overall precision {:.3}",
        overall.precision()
    );
    assert!(
        overall.recall() >= OVERALL_RECALL,
        "overall recall {:.3}",
        overall.recall()
    );
    for (theme, c) in Theme::SAFEGUARDING.into_iter().zip(per_theme) {
        assert!(
            c.true_pos + c.false_neg > 0,
            "the corpus has no {theme} texts"
        );
        assert!(
            c.precision() >= THEME_PRECISION,
            "{theme} precision {:.3}",
            c.precision()
        );
        assert!(
            c.recall() >= THEME_RECALL,
            "{theme} recall {:.3}",
            c.recall()
        );
    }
}
