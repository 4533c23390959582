//! Safeguarding risk-phrase detection: which themes (self-harm, extremism, bullying...)
//! a short text such as a search term touches, how severely, and through which phrase.
//!
//! Pure: no IO and no clock. Phrase lists are text given to [`Lists`] with the name of
//! the file they came from (the built-in ones are compiled in); the caller reads files.
//! Texts and phrases are both brought to one normal form (see [`normalise`]'s module
//! docs: case, accents, look-alike letters, leetspeak, spacing, repeated letters) and
//! matched as whole words by one Aho-Corasick automaton, into a caller-owned
//! [`Scratch`], so steady-state matching allocates nothing.
//!
//! ```
//! use hallpass_detect::{Lists, Scratch, Theme};
//! let matcher = Lists::builtin().unwrap().matcher().unwrap();
//! let mut scratch = Scratch::new();
//! let found: Vec<_> = matcher.find("how to k1ll mys3lf", &mut scratch).collect();
//! assert!(found.iter().any(|p| p.theme == Theme::SelfHarm && p.severity == 5));
//! assert_eq!(matcher.find("Scunthorpe grape therapist", &mut scratch).count(), 0);
//! ```

mod load;
mod normalise;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

pub use load::{ListError, Lists, builtin_lists, parse_list};

/// A safeguarding theme: what kind of risk a phrase points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Theme {
    SelfHarm,
    Extremism,
    Bullying,
    SexualExploitation,
    Drugs,
    Weapons,
    Hate,
    Adult,
    /// Obscene, rude or abusive words (no built-in list: the mail filter brings its own).
    OffensiveLanguage,
}

impl Theme {
    pub const ALL: [Theme; 9] = [
        Theme::SelfHarm,
        Theme::Extremism,
        Theme::Bullying,
        Theme::SexualExploitation,
        Theme::Drugs,
        Theme::Weapons,
        Theme::Hate,
        Theme::Adult,
        Theme::OffensiveLanguage,
    ];

    /// The themes the built-in lists cover: all but offensive language, which is a
    /// conduct matter for the mail filter's own list, not a safeguarding risk.
    pub const SAFEGUARDING: [Theme; 8] = [
        Theme::SelfHarm,
        Theme::Extremism,
        Theme::Bullying,
        Theme::SexualExploitation,
        Theme::Drugs,
        Theme::Weapons,
        Theme::Hate,
        Theme::Adult,
    ];

    /// The name used in list files and output (`self-harm`, `sexual-exploitation`).
    pub fn name(self) -> &'static str {
        match self {
            Theme::SelfHarm => "self-harm",
            Theme::Extremism => "extremism",
            Theme::Bullying => "bullying",
            Theme::SexualExploitation => "sexual-exploitation",
            Theme::Drugs => "drugs",
            Theme::Weapons => "weapons",
            Theme::Hate => "hate",
            Theme::Adult => "adult",
            Theme::OffensiveLanguage => "offensive-language",
        }
    }

    /// What the theme covers, for people reading a report.
    pub fn description(self) -> &'static str {
        match self {
            Theme::SelfHarm => "self-harm and suicide",
            Theme::Extremism => "extremism and radicalisation",
            Theme::Bullying => "bullying and harassment",
            Theme::SexualExploitation => "sexual exploitation and grooming",
            Theme::Drugs => "drugs",
            Theme::Weapons => "weapons and violence",
            Theme::Hate => "hate and discrimination",
            Theme::Adult => "adult content",
            Theme::OffensiveLanguage => "obscene, rude or abusive language",
        }
    }

    pub fn from_name(name: &str) -> Option<Theme> {
        Theme::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Theme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One phrase of a list: its theme, severity (1 = worth knowing, 5 = act now), the
/// phrase as written in the list, and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    pub theme: Theme,
    pub severity: u8,
    pub phrase: String,
    /// The list file's name (`en.txt`) and line, for a person asking "why did it match".
    pub list: String,
    pub line: usize,
}

/// A matcher could not be built from the lists.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the phrase lists are too large to compile: {0}")]
    Automaton(#[from] aho_corasick::BuildError),
}

/// The reusable buffer a text is normalised into: one per thread or task, kept across
/// calls, so matching allocates only while it grows to the longest text seen.
#[derive(Debug, Default)]
pub struct Scratch {
    normal: Vec<u8>,
}

impl Scratch {
    pub fn new() -> Self {
        Self::default()
    }

    /// A scratch buffer that never grows for texts up to `bytes` long.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            normal: Vec::with_capacity(bytes + 2),
        }
    }

    /// The normal form of the last text given to [`Matcher::find`], for explaining it.
    pub fn normal_form(&self) -> &str {
        // Only ASCII bytes are ever written (see `normalise`), so this never fails.
        std::str::from_utf8(&self.normal).unwrap_or_default()
    }
}

/// The compiled lists: one automaton over the normal form of every phrase.
#[derive(Debug)]
pub struct Matcher {
    automaton: AhoCorasick,
    /// Phrase index for each automaton pattern (a phrase has one or two patterns).
    pattern_phrase: Vec<usize>,
    phrases: Vec<Phrase>,
}

impl Matcher {
    /// Compiles phrases. A phrase of several words also matches written as one word
    /// (`killmyself`). When two phrases of one theme have the same normal form (the
    /// same word in two languages' lists), only the more severe is kept.
    pub fn new(phrases: Vec<Phrase>) -> Result<Matcher, BuildError> {
        let mut kept: Vec<Phrase> = Vec::with_capacity(phrases.len());
        let mut normals: Vec<Vec<u8>> = Vec::with_capacity(phrases.len());
        let mut seen: HashMap<(Theme, Vec<u8>), usize> = HashMap::new();
        for phrase in phrases {
            let mut normal = Vec::new();
            normalise::normalise(&phrase.phrase, &mut normal);
            match seen.entry((phrase.theme, normal.clone())) {
                Entry::Occupied(at) => {
                    let i = *at.get();
                    if kept[i].severity < phrase.severity {
                        kept[i] = phrase;
                    }
                }
                Entry::Vacant(slot) => {
                    slot.insert(kept.len());
                    kept.push(phrase);
                    normals.push(normal);
                }
            }
        }
        let mut patterns: Vec<Vec<u8>> = Vec::with_capacity(normals.len() * 2);
        let mut pattern_phrase = Vec::with_capacity(normals.len() * 2);
        for (i, normal) in normals.into_iter().enumerate() {
            // ` kil myself ` has 3 spaces: the joined form ` kilmyself ` is another pattern.
            if normal.iter().filter(|&&b| b == b' ').count() > 2 {
                let inner = &normal[1..normal.len() - 1];
                let mut joined: Vec<u8> = vec![b' '];
                joined.extend(inner.iter().filter(|&&b| b != b' '));
                joined.push(b' ');
                patterns.push(joined);
                pattern_phrase.push(i);
            }
            patterns.push(normal);
            pattern_phrase.push(i);
        }
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&patterns)?;
        Ok(Matcher {
            automaton,
            pattern_phrase,
            phrases: kept,
        })
    }

    /// Every phrase found in `text`, in order of where it ends; a phrase written twice
    /// is found twice. Allocates nothing once `scratch` has grown to the text's length.
    pub fn find<'a>(
        &'a self,
        text: &str,
        scratch: &'a mut Scratch,
    ) -> impl Iterator<Item = &'a Phrase> + 'a {
        normalise::normalise(text, &mut scratch.normal);
        let normal: &'a [u8] = &scratch.normal;
        self.automaton
            .find_overlapping_iter(normal)
            .map(|m| &self.phrases[self.pattern_phrase[m.pattern().as_usize()]])
    }

    /// The phrases compiled, after duplicates were merged.
    pub fn phrases(&self) -> &[Phrase] {
        &self.phrases
    }
}
