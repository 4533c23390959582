//! Phrase list files: the line format, the built-in lists, and a school's own lists
//! added to or replacing them. The caller reads the files; this module gets their text
//! and name. The format is documented in `crates/detect/lists/README.md`.

use crate::{BuildError, Matcher, Phrase, Theme};

/// The lists compiled into the crate, one per language.
pub fn builtin_lists() -> [(&'static str, &'static str); 4] {
    [
        ("en.txt", include_str!("../lists/en.txt")),
        ("pl.txt", include_str!("../lists/pl.txt")),
        ("ro.txt", include_str!("../lists/ro.txt")),
        ("es.txt", include_str!("../lists/es.txt")),
    ]
}

/// A line of a list file that cannot be read: `FILE:LINE: reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct ListError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// Reads one list file: `THEME SEVERITY PHRASE` per line, `#` starting a comment line,
/// blank lines ignored. Every problem is an error naming the file and line; nothing of
/// a file with an error is used.
pub fn parse_list(file: &str, text: &str) -> Result<Vec<Phrase>, ListError> {
    let mut phrases = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let error = |reason: String| ListError {
            file: file.to_owned(),
            line,
            reason,
        };
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let mut fields = content.splitn(3, char::is_whitespace);
        let theme_field = fields.next().unwrap_or_default();
        let theme = Theme::from_name(theme_field).ok_or_else(|| {
            let known: Vec<&str> = Theme::ALL.iter().map(|t| t.name()).collect();
            error(format!(
                "unknown theme `{theme_field}` (expected one of: {})",
                known.join(", ")
            ))
        })?;
        let severity_field = fields.next().unwrap_or_default();
        let severity = match severity_field.parse::<u8>() {
            Ok(s @ 1..=5) => s,
            _ if severity_field.is_empty() => {
                return Err(error(
                    "missing severity and phrase (expected `THEME SEVERITY PHRASE`)".into(),
                ));
            }
            _ => {
                return Err(error(format!(
                    "severity `{severity_field}` is not a whole number from 1 to 5"
                )));
            }
        };
        let phrase = fields.next().unwrap_or_default().trim();
        if phrase.is_empty() {
            return Err(error(
                "empty phrase (expected `THEME SEVERITY PHRASE`)".into(),
            ));
        }
        let mut normal = Vec::new();
        crate::normalise::normalise(phrase, &mut normal);
        if normal.len() <= 1 {
            return Err(error(format!(
                "phrase `{phrase}` has no letters to match (numbers and symbols alone are not words)"
            )));
        }
        phrases.push(Phrase {
            theme,
            severity,
            phrase: phrase.to_owned(),
            list: file.to_owned(),
            line,
        });
    }
    Ok(phrases)
}

/// The set of list files a matcher is built from: the built-in ones, then a school's.
/// A school file with the name of a built-in one (`en.txt`) replaces it; any other name
/// adds to them.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    /// Each file's name and phrases.
    files: Vec<(String, Vec<Phrase>)>,
}

impl Lists {
    /// No lists at all (a matcher from it finds nothing).
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in lists. They parse (this crate's tests say so), but an error in one
    /// is still reported, not hidden.
    pub fn builtin() -> Result<Self, ListError> {
        let mut lists = Self::empty();
        for (name, text) in builtin_lists() {
            lists.add(name, text)?;
        }
        Ok(lists)
    }

    /// Adds one file, replacing a file of the same name. On an error nothing changes.
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), ListError> {
        let phrases = parse_list(name, text)?;
        match self.files.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = phrases,
            None => self.files.push((name.to_owned(), phrases)),
        }
        Ok(())
    }

    /// The files' names, in the order they were added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|(n, _)| n.as_str())
    }

    /// Compiles every file's phrases into one matcher.
    pub fn matcher(&self) -> Result<Matcher, BuildError> {
        let phrases = self
            .files
            .iter()
            .flat_map(|(_, phrases)| phrases.iter().cloned())
            .collect();
        Matcher::new(phrases)
    }
}
