//! `[documents.declaration]` and `[declarations]` (see `crate::declaration`).

use toml_edit::Item;

use super::reader::*;
use crate::declaration::{DeclarationDef, DeclarationsDef, TextSource};
use crate::diag::Reporter;
use crate::model::{Sp, Span};

/// The `declaration` table of `documents[i]`; `version` is the document's, used when the
/// declaration gives none.
pub(super) fn parse_declaration(
    r: &mut Reporter,
    got: Option<(&Item, Span, String)>,
    i: usize,
    document_title: Option<&str>,
    document_version: Option<&Sp<String>>,
) -> Option<DeclarationDef> {
    let (item, span, _) = got?;
    let path = format!("documents[{i}].declaration");
    let mut o = Obj::table(r, item, path.clone(), &span)?;
    let title = string(r, o.get("title"));
    let text = string(r, o.get("text"));
    let text_file = string(r, o.get("text_file"));
    let version = string(r, o.get("version"));
    o.finish(r);
    let text = match (text, text_file) {
        (Some(t), None) if t.value.trim().is_empty() => {
            r.error(&t.span, format!("`{path}.text` is empty"));
            TextSource::Inline(String::new())
        }
        (Some(t), None) => TextSource::Inline(t.value),
        (None, Some(f)) if f.value.trim().is_empty() => {
            r.error(&f.span, format!("`{path}.text_file` is empty"));
            TextSource::Inline(String::new())
        }
        (None, Some(f)) => TextSource::File(f),
        (Some(t), Some(_)) => {
            r.error(
                &t.span,
                format!("`{path}`: give `text` or `text_file`, not both"),
            );
            TextSource::Inline(t.value)
        }
        (None, None) => {
            r.error(
                &span,
                format!("`{path}`: missing `text` (the declaration itself) or `text_file` (a file beside the policy)"),
            );
            TextSource::Inline(String::new())
        }
    };
    let version = match (version, document_version) {
        (Some(v), _) if v.value.trim().is_empty() => {
            r.error(&v.span, format!("`{path}.version` is empty"));
            String::new()
        }
        (Some(v), _) => v.value,
        (None, Some(v)) if !v.value.trim().is_empty() => v.value.clone(),
        (None, _) => {
            r.error(
                &span,
                format!("`{path}`: no `version`, and the document has none: people accept a version, so a new one asks them again"),
            );
            String::new()
        }
    };
    let title = title.map(|t| t.value).unwrap_or_else(|| {
        format!(
            "Acceptable use declaration: {}",
            document_title.unwrap_or("the policy")
        )
    });
    Some(DeclarationDef {
        span,
        title,
        text,
        version,
    })
}

/// The top-level `[declarations]` table.
pub(super) fn parse_declarations(r: &mut Reporter, root: &mut Obj<'_>) -> DeclarationsDef {
    let Some((item, span, field)) = root.get("declarations") else {
        return DeclarationsDef::default();
    };
    let Some(mut o) = Obj::table(r, item, field, &span) else {
        return DeclarationsDef::default();
    };
    let restricted_group = string(r, o.get("restricted_group"));
    o.finish(r);
    DeclarationsDef {
        span: Some(span),
        restricted_group,
    }
}
