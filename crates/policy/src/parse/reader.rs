//! Reading tables and values with positions: every key used is remembered so unknown
//! keys can be reported, and every wrong value is reported where it was written.

use toml_edit::{Item, Key, TableLike, Value};

use crate::diag::Reporter;
use crate::model::{Sp, Span};

/// A table being read: remembers which keys were used so the rest can be reported as
/// unknown.
pub(super) struct Obj<'a> {
    pub(super) path: String,
    pub(super) span: Span,
    pub(super) entries: Vec<(&'a Key, &'a Item, bool)>,
    pub(super) known: Vec<&'static str>,
    pub(super) missing: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    pub(super) fn new(item: &'a Item, path: String, span: Span) -> Self {
        match item.as_table_like() {
            Some(t) => Self::of_table(t, path, span),
            None => Obj {
                path,
                span,
                entries: Vec::new(),
                known: Vec::new(),
                missing: Vec::new(),
            },
        }
    }

    fn of_table(t: &'a dyn TableLike, path: String, span: Span) -> Self {
        let entries = t
            .iter()
            .filter_map(|(k, _)| t.get_key_value(k))
            .map(|(key, value)| (key, value, false))
            .collect();
        Obj {
            path,
            span,
            entries,
            known: Vec::new(),
            missing: Vec::new(),
        }
    }

    /// The tables of an array of tables (`[[name]]`) as read with [`Obj::get`] or
    /// [`Obj::required`], each with its index and path `name[i]`; an error when the key
    /// holds anything else.
    pub(super) fn array_of_tables(
        r: &mut Reporter,
        got: Option<(&'a Item, Span, String)>,
        name: &str,
    ) -> Vec<(usize, Self)> {
        let Some((item, span, field)) = got else {
            return Vec::new();
        };
        let Some(tables) = item.as_array_of_tables() else {
            r.error(
                &span,
                format!("`{field}` must be an array of tables (`[[{name}]]`)"),
            );
            return Vec::new();
        };
        tables
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let tspan = t.span().unwrap_or(span.clone());
                (i, Self::of_table(t, format!("{name}[{i}]"), tspan))
            })
            .collect()
    }

    /// `item` as a table, or an error naming `path`.
    pub(super) fn table(
        r: &mut Reporter,
        item: &'a Item,
        path: String,
        fallback: &Span,
    ) -> Option<Self> {
        let span = item.span().unwrap_or_else(|| fallback.clone());
        if item.as_table_like().is_none() {
            r.error(
                &span,
                format!("`{path}` must be a table, found {}", item.type_name()),
            );
            return None;
        }
        Some(Obj::new(item, path, span))
    }

    pub(super) fn field(&self, key: &str) -> String {
        if self.path == "the top level" {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn get(&mut self, key: &'static str) -> Option<(&'a Item, Span, String)> {
        self.known.push(key);
        let field = self.field(key);
        let fallback = self.span.clone();
        self.entries
            .iter_mut()
            .find(|(k, _, _)| k.get() == key)
            .map(|e| {
                e.2 = true;
                let span = e.1.span().or_else(|| e.0.span()).unwrap_or(fallback);
                (e.1, span, field)
            })
    }

    /// Like `get`; a missing key is reported by `finish`.
    pub(super) fn required(&mut self, key: &'static str) -> Option<(&'a Item, Span, String)> {
        let got = self.get(key);
        if got.is_none() {
            self.missing.push(key);
        }
        got
    }

    pub(super) fn finish(self, r: &mut Reporter) {
        for key in &self.missing {
            r.error(
                &self.span,
                format!("`{}`: missing required key `{key}`", self.path),
            );
        }
        for (k, item, used) in &self.entries {
            if !used {
                let span = k
                    .span()
                    .or_else(|| item.span())
                    .unwrap_or(self.span.clone());
                let field = self.field(k.get());
                r.error(
                    &span,
                    format!(
                        "`{field}`: unknown key (expected one of: {})",
                        self.known.join(", ")
                    ),
                );
            }
        }
    }

    /// Keys in file order, for tables whose keys are names (`[periods.NAME]`).
    pub(super) fn named_children(&mut self) -> Vec<(Sp<String>, &'a Item)> {
        self.entries
            .iter_mut()
            .map(|e| {
                e.2 = true;
                let span = e.0.span().or_else(|| e.1.span()).unwrap_or(0..0);
                (
                    Sp {
                        value: e.0.get().to_owned(),
                        span,
                    },
                    e.1,
                )
            })
            .collect()
    }
}

pub(super) fn value<'a>(
    r: &mut Reporter,
    item: &'a Item,
    span: &Span,
    field: &str,
    want: &str,
) -> Option<&'a Value> {
    let v = item.as_value();
    if v.is_none() {
        r.error(
            span,
            format!("`{field}` must be {want}, found {}", item.type_name()),
        );
    }
    v
}

pub(super) fn string(r: &mut Reporter, got: Option<(&Item, Span, String)>) -> Option<Sp<String>> {
    let (item, span, field) = got?;
    let v = value(r, item, &span, &field, "a string")?;
    match v.as_str() {
        Some(s) => Some(Sp {
            value: s.to_owned(),
            span,
        }),
        None => {
            r.error(
                &span,
                format!("`{field}` must be a string, found {}", v.type_name()),
            );
            None
        }
    }
}

pub(super) fn integer(r: &mut Reporter, got: Option<(&Item, Span, String)>) -> Option<Sp<i64>> {
    let (item, span, field) = got?;
    let v = value(r, item, &span, &field, "an integer")?;
    match v.as_integer() {
        Some(i) => Some(Sp { value: i, span }),
        None => {
            r.error(
                &span,
                format!("`{field}` must be an integer, found {}", v.type_name()),
            );
            None
        }
    }
}

pub(super) fn boolean(r: &mut Reporter, got: Option<(&Item, Span, String)>) -> Option<bool> {
    let (item, span, field) = got?;
    let v = value(r, item, &span, &field, "true or false")?;
    let b = v.as_bool();
    if b.is_none() {
        r.error(
            &span,
            format!("`{field}` must be true or false, found {}", v.type_name()),
        );
    }
    b
}

/// An array of strings (TOML dates are accepted as their text, for date lists).
pub(super) fn strings(
    r: &mut Reporter,
    got: Option<(&Item, Span, String)>,
) -> Option<Vec<Sp<String>>> {
    let (item, span, field) = got?;
    let arr = value(r, item, &span, &field, "an array of strings")?;
    let Some(arr) = arr.as_array() else {
        r.error(
            &span,
            format!(
                "`{field}` must be an array of strings, found {}",
                arr.type_name()
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    for (i, v) in arr.iter().enumerate() {
        let vspan = v.span().unwrap_or(span.clone());
        if let Some(s) = v.as_str() {
            out.push(Sp {
                value: s.to_owned(),
                span: vspan,
            });
        } else if let Some(d) = v.as_datetime() {
            out.push(Sp {
                value: d.to_string(),
                span: vspan,
            });
        } else {
            r.error(
                &vspan,
                format!("`{field}[{i}]` must be a string, found {}", v.type_name()),
            );
        }
    }
    Some(out)
}

/// Like `strings`, for rule conditions: an empty list is an error, because leaving a
/// condition out means "anything" and `[]` would silently mean the same.
pub(super) fn condition(
    r: &mut Reporter,
    got: Option<(&Item, Span, String)>,
) -> Option<Vec<Sp<String>>> {
    let (span, field) = got.as_ref().map(|g| (g.1.clone(), g.2.clone()))?;
    let list = strings(r, got)?;
    if list.is_empty() {
        r.error(
            &span,
            format!("`{field}` is empty: list at least one value, or leave the key out"),
        );
    }
    Some(list)
}

pub(super) fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub(super) fn check_name(r: &mut Reporter, name: &Sp<String>, field: &str) {
    if !is_name(&name.value) {
        r.error(
            &name.span,
            format!(
                "`{field}`: `{}` is not a valid name (use letters, digits, `-` and `_`)",
                name.value
            ),
        );
    }
}
