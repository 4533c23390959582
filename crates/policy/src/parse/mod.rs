//! TOML text -> [`PolicyDoc`]. Walks the `toml_edit` tree by hand (rather than serde)
//! so that every problem in the file is reported at once, each at its own position.
//! `reader` holds the table/value helpers; the other modules read one part each.

mod declarations;
mod mail;
mod reader;
mod rules;
mod schedule;
mod sections;
mod who;

use toml_edit::Document;

use crate::category::CategoryVocab;
use crate::diag::{Diagnostic, Reporter};
use crate::model::PolicyDoc;
use reader::Obj;

impl PolicyDoc {
    /// Parse policy text. `path_for_messages` is only used to label diagnostics.
    pub fn parse(path_for_messages: &str, text: &str) -> Result<PolicyDoc, Vec<Diagnostic>> {
        let mut r = Reporter::new(path_for_messages, text);
        let doc = match Document::parse(text) {
            Ok(doc) => doc,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let msg = e.message().trim().replace('\n', " ");
                r.error(&span, format!("invalid TOML: {msg}"));
                return Err(r.sorted());
            }
        };
        let mut root = Obj::new(doc.as_item(), "the top level".into(), 0..0);
        let pd = sections::parse_root(&mut r, &mut root);
        root.finish(&mut r);
        // Resolve names now too (categories aside, which need the catalog), so one run
        // reports every error in the file, not only the syntactic ones.
        if let Err(more) = pd.compile(&CategoryVocab::open()) {
            r.diags.extend(more);
        }
        if r.has_errors() {
            Err(r.sorted())
        } else {
            Ok(PolicyDoc { rep: r, ..pd })
        }
    }
}
