//! The language a message's text uses: the safeguarding themes of the detection crate
//! (its built-in risk-phrase lists) and offensive or abusive words (`lists/offensive.txt`,
//! data, not code), for the mail rules' `language` condition.

use std::sync::LazyLock;

use hallpass_detect::{Lists, Matcher, Scratch};

/// The offensive-language list compiled into the crate.
pub const OFFENSIVE_LIST: (&str, &str) = ("offensive.txt", include_str!("../lists/offensive.txt"));

/// The built-in lists and the offensive-language list, compiled once. `None` only if a
/// built-in list failed to compile, which the crate's tests rule out; the relay then
/// reads no language and logs why.
static MATCHER: LazyLock<Option<Matcher>> = LazyLock::new(|| {
    let built = Lists::builtin()
        .and_then(|mut lists| {
            lists.add(OFFENSIVE_LIST.0, OFFENSIVE_LIST.1)?;
            Ok(lists)
        })
        .map_err(|e| e.to_string())
        .and_then(|lists| lists.matcher().map_err(|e| e.to_string()));
    match built {
        Ok(m) => Some(m),
        Err(error) => {
            tracing::error!(%error, "mail: the language lists do not compile; no language rule can match");
            None
        }
    }
});

/// One theme found in a message, with its worst severity and the phrase that showed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LanguageHit {
    pub theme: &'static str,
    pub severity: u8,
    /// `FILE:LINE` of the phrase in its list, for "why did it match".
    pub list: String,
}

/// The themes `texts` touch, most severe first, one entry per theme.
pub fn language<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<LanguageHit> {
    let mut hits: Vec<LanguageHit> = Vec::new();
    for text in texts {
        add_language(&mut hits, text);
    }
    hits.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.theme.cmp(b.theme)));
    hits
}

/// Adds the themes `text` touches to `hits` (one entry per theme, its worst severity).
pub fn add_language(hits: &mut Vec<LanguageHit>, text: &str) {
    let Some(matcher) = MATCHER.as_ref() else {
        return;
    };
    let mut scratch = Scratch::new();
    {
        for p in matcher.find(text, &mut scratch) {
            let theme = p.theme.name();
            match hits.iter_mut().find(|h| h.theme == theme) {
                Some(h) if h.severity >= p.severity => {}
                Some(h) => {
                    h.severity = p.severity;
                    h.list = format!("{}:{}", p.list, p.line);
                }
                None => hits.push(LanguageHit {
                    theme,
                    severity: p.severity,
                    list: format!("{}:{}", p.list, p.line),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_compile_and_find_abuse_and_themes() {
        assert!(MATCHER.is_some());
        let hits = language(["Hi", "you fucking idiot, nobody likes you"]);
        let themes: Vec<&str> = hits.iter().map(|h| h.theme).collect();
        assert_eq!(themes, ["bullying", "offensive-language"], "{hits:?}");
        let offensive = &hits[1];
        assert_eq!(offensive.severity, 3);
        assert!(offensive.list.starts_with("offensive.txt:"));
        assert!(language(["Shit, I missed the bus"])[0].severity == 2);
        let hits = language(["I want to kill myself"]);
        assert_eq!(hits[0].theme, "self-harm");
        assert!(language(["Scunthorpe grammar school, class of 1990"]).is_empty());
    }

    #[test]
    fn policy_language_themes_are_the_detectors_themes() {
        let detector: Vec<&str> = hallpass_detect::Theme::ALL
            .iter()
            .map(|t| t.name())
            .collect();
        for t in hallpass_policy::LANGUAGE_THEMES {
            assert!(detector.contains(&t), "{t} is not a detector theme");
        }
        for t in &detector {
            assert!(
                hallpass_policy::LANGUAGE_THEMES.contains(t),
                "{t} cannot be named in a mail rule"
            );
        }
    }
}
