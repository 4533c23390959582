//! The detect crate's one integration-test binary: whole-word matching through
//! obfuscation (the Scunthorpe set both ways), the list format and its errors, the
//! labelled corpus (precision and recall per theme), and allocation-free matching.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod alloc;
mod corpus;
mod lists;
mod words;

use hallpass_detect::{Lists, Matcher, Scratch, Theme};

pub fn builtin() -> Matcher {
    Lists::builtin().unwrap().matcher().unwrap()
}

/// The (theme, severity, phrase) of every match, in order.
pub fn found(matcher: &Matcher, text: &str) -> Vec<(Theme, u8, String)> {
    let mut scratch = Scratch::new();
    matcher
        .find(text, &mut scratch)
        .map(|p| (p.theme, p.severity, p.phrase.clone()))
        .collect()
}
