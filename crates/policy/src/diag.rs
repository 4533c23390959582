//! Diagnostics: errors and warnings that point at `FILE:LINE:COL` in the policy text.

use std::fmt;
use std::ops::Range;

/// How serious a [`Diagnostic`] is. Errors stop a policy from loading; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a policy file, located by line and column (both 1-based,
/// columns counted in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// Names the field (e.g. `rules[3].groups[0]`) and what is wrong with it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            ),
            Severity::Warning => write!(
                f,
                "{}:{}:{}: warning: {}",
                self.file, self.line, self.col, self.message
            ),
        }
    }
}

impl std::error::Error for Diagnostic {}

/// Maps byte offsets to line:column, so spans from the TOML parser become positions a
/// person can find in an editor.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    text: String,
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            text: text.to_owned(),
            starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(line).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }
}

/// Collects diagnostics for one file.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    pub(crate) file: String,
    pub(crate) lines: LineIndex,
    pub(crate) diags: Vec<Diagnostic>,
}

impl Reporter {
    pub(crate) fn new(file: &str, text: &str) -> Self {
        Self {
            file: file.to_owned(),
            lines: LineIndex::new(text),
            diags: Vec::new(),
        }
    }

    pub(crate) fn make(
        &self,
        severity: Severity,
        span: &Range<usize>,
        message: String,
    ) -> Diagnostic {
        let (line, col) = self.lines.position(span.start);
        Diagnostic {
            severity,
            file: self.file.clone(),
            line,
            col,
            message,
        }
    }

    pub(crate) fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let d = self.make(Severity::Error, span, message.into());
        self.diags.push(d);
    }

    pub(crate) fn warning(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let d = self.make(Severity::Warning, span, message.into());
        self.diags.push(d);
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.diags.iter().any(|d| d.severity == Severity::Error)
    }

    /// Diagnostics in file order, so a reader can work down the file.
    pub(crate) fn sorted(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|d| (d.line, d.col));
        self.diags
    }
}
