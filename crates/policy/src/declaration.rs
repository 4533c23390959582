//! The acceptable-use declaration at logon (WCS ICT policy 000 §14: "All users ... confirm
//! their understanding by dint of the acceptable use declaration at logon").
//!
//! A `[[documents]]` entry may carry a `[documents.declaration]` (title, the text or a
//! text file beside the policy, and its version: the document's unless given). The
//! `[declarations]` section names the group a person is put in until they have accepted
//! the current version of every declaration (`restricted_group`), fail closed as for
//! unidentified clients. Which declarations a person has accepted is live state the
//! engine supplies; this module only says which are pending.

use crate::diag::Reporter;
use crate::groups::{GroupId, GroupSet};
use crate::model::{PolicyDoc, Sp, Span};
use crate::policy::Policy;

/// Where a declaration's text comes from, as written.
#[derive(Debug, Clone)]
pub(crate) enum TextSource {
    Inline(String),
    /// A path relative to the policy file, read by [`PolicyDoc::read_declaration_files`].
    File(Sp<String>),
}

/// `[documents.declaration]` as written.
#[derive(Debug, Clone)]
pub(crate) struct DeclarationDef {
    pub(crate) span: Span,
    pub(crate) title: String,
    pub(crate) text: TextSource,
    pub(crate) version: String,
}

/// `[declarations]` as written.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeclarationsDef {
    pub(crate) span: Option<Span>,
    pub(crate) restricted_group: Option<Sp<String>>,
}

/// A declaration a person must accept: one per document that has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// The document id (`wcs`).
    pub document: String,
    pub version: String,
    pub title: String,
    pub text: String,
}

/// The compiled declarations and the group that applies until they are accepted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Declarations {
    pub(crate) list: Vec<Declaration>,
    pub(crate) restricted: Option<GroupId>,
}

impl PolicyDoc {
    /// Reads every declaration given as `text_file`, through `read` (given the path as
    /// written; the caller resolves it against the policy's directory). A file that cannot
    /// be read, or is empty, is an error at the `text_file` key.
    pub fn read_declaration_files(
        &mut self,
        mut read: impl FnMut(&str) -> Result<String, String>,
    ) -> Result<(), Vec<crate::Diagnostic>> {
        let mut r = self.rep.clone();
        r.diags.clear();
        for (i, doc) in self.documents.iter_mut().enumerate() {
            let Some(decl) = &mut doc.declaration else {
                continue;
            };
            let TextSource::File(path) = &decl.text else {
                continue;
            };
            let field = format!("documents[{i}].declaration.text_file");
            match read(&path.value) {
                Ok(text) if !text.trim().is_empty() => decl.text = TextSource::Inline(text),
                Ok(_) => r.error(&path.span, format!("`{field}`: `{}` is empty", path.value)),
                Err(why) => r.error(
                    &path.span,
                    format!("`{field}`: cannot read `{}`: {why}", path.value),
                ),
            }
        }
        if r.has_errors() {
            Err(r.sorted())
        } else {
            Ok(())
        }
    }

    /// Resolves `[declarations]` and each document's declaration (names checked against
    /// `group_names`, in `GroupId` order).
    pub(crate) fn compile_declarations(
        &self,
        r: &mut Reporter,
        group_names: &[&str],
        group_allows_by_default: impl Fn(usize) -> bool,
    ) -> Declarations {
        let mut list = Vec::new();
        let mut first_span = None;
        for d in &self.documents {
            let Some(decl) = &d.declaration else {
                continue;
            };
            first_span.get_or_insert_with(|| decl.span.clone());
            let text = match &decl.text {
                TextSource::Inline(text) => text.trim().to_string(),
                // Not read (`hallpass policy check` without the files): the version is
                // what counts for acceptance; the engine's loader reads the file.
                TextSource::File(path) => format!("(the text of {})", path.value),
            };
            list.push(Declaration {
                document: d.id.value.clone(),
                version: decl.version.clone(),
                title: decl.title.clone(),
                text,
            });
        }
        let mut restricted = None;
        match (&self.declarations.restricted_group, first_span) {
            (Some(g), _) => match group_names.iter().position(|n| *n == g.value) {
                Some(i) => {
                    if group_allows_by_default(i) {
                        r.error(
                            &g.span,
                            format!(
                                "`declarations.restricted_group`: group `{}` allows by default; the group for people who have not accepted the declaration must fail closed (default \"block\")",
                                g.value
                            ),
                        );
                    }
                    restricted = u8::try_from(i).ok().map(GroupId);
                    if list.is_empty() {
                        r.warning(
                            &g.span,
                            "`declarations.restricted_group`: no document has a `declaration`, so nobody is restricted",
                        );
                    }
                }
                None => r.error(
                    &g.span,
                    format!(
                        "`declarations.restricted_group`: unknown group `{}` (defined: {})",
                        g.value,
                        if group_names.is_empty() {
                            "none".to_string()
                        } else {
                            group_names.join(", ")
                        }
                    ),
                ),
            },
            (None, Some(span)) => r.error(
                &span,
                "a document has a `declaration` but `[declarations]` names no `restricted_group`: name the group that applies until a person accepts (fail closed, as for unidentified clients)",
            ),
            (None, None) => {
                if let Some(span) = &self.declarations.span {
                    r.error(
                        span,
                        "`declarations`: missing required key `restricted_group`",
                    );
                }
            }
        }
        Declarations { list, restricted }
    }
}

impl Policy {
    /// Every declaration in force (one per document that has one), in document order.
    pub fn declarations(&self) -> &[Declaration] {
        &self.declarations.list
    }

    /// The declaration of document `id`, if it has one.
    pub fn declaration(&self, document: &str) -> Option<&Declaration> {
        self.declarations
            .list
            .iter()
            .find(|d| d.document == document)
    }

    /// The declarations a person has still to accept, given whether they accepted a
    /// (document, version).
    pub fn pending_declarations(
        &self,
        accepted: impl Fn(&str, &str) -> bool,
    ) -> impl Iterator<Item = &Declaration> {
        self.declarations
            .list
            .iter()
            .filter(move |d| !accepted(&d.document, &d.version))
    }

    /// The group applied to a person with a pending declaration (`None` when the policy
    /// has no declarations).
    pub fn restricted_groups(&self) -> Option<GroupSet> {
        if self.declarations.list.is_empty() {
            return None;
        }
        self.declarations.restricted.map(GroupSet::single)
    }
}
