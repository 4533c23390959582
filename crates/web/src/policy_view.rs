//! The live policy rendered readably: rules in order with the document and clause each
//! cites. The compiled policy keeps rules private, so the rules are read from the same
//! TOML text it was compiled from (already validated, so a shape surprise is a bug).

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyView {
    pub source: String,
    pub school: String,
    pub timezone: String,
    pub documents: Vec<DocumentView>,
    pub groups: Vec<String>,
    pub rules: Vec<RuleView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentView {
    pub id: String,
    pub title: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleView {
    /// 0-based position: the first matching rule wins.
    pub index: usize,
    pub id: String,
    pub action: String,
    pub document: String,
    /// The document's title, when the policy names it.
    pub document_title: String,
    pub clause: String,
    pub message: String,
    /// What it matches, in words (categories, domains, URL prefixes, file types).
    pub matches: Vec<String>,
    /// Who it applies to, in words (groups, except groups).
    pub applies_to: Vec<String>,
    /// When, in words (during / outside periods).
    pub when: Vec<String>,
    pub teacher_override: bool,
}

fn list(v: &toml::Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn text(v: &toml::Value, key: &str) -> String {
    v.get(key)
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub fn render(
    source: &str,
    policy_text: &str,
    policy: &hallpass_policy::Policy,
) -> Result<PolicyView, String> {
    let doc: toml::Value = toml::from_str(policy_text)
        .map_err(|e| format!("the policy {source} no longer parses: {e}"))?;
    let documents: Vec<DocumentView> = policy
        .documents()
        .iter()
        .map(|d| DocumentView {
            id: d.id.clone(),
            title: d.title.clone(),
            version: d.version.clone(),
        })
        .collect();
    let rules = doc
        .get("rules")
        .and_then(toml::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let rules = rules
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let document = text(r, "document");
            let mut matches = Vec::new();
            for (key, label) in [
                ("categories", "categories"),
                ("domains", "domains"),
                ("url_prefixes", "URL prefixes"),
            ] {
                let items = list(r, key);
                if !items.is_empty() {
                    matches.push(format!("{label}: {}", items.join(", ")));
                }
            }
            if let Some(ft) = r.get("file_types") {
                for (key, label) in [("extensions", "file types"), ("mime", "MIME types")] {
                    let items = list(ft, key);
                    if !items.is_empty() {
                        matches.push(format!("{label}: {}", items.join(", ")));
                    }
                }
            }
            let mut applies_to = Vec::new();
            let groups = list(r, "groups");
            applies_to.push(if groups.is_empty() {
                "everyone".to_string()
            } else {
                format!("groups: {}", groups.join(", "))
            });
            let except = list(r, "except_groups");
            if !except.is_empty() {
                applies_to.push(format!("except: {}", except.join(", ")));
            }
            let mut when = Vec::new();
            let during = list(r, "during");
            if !during.is_empty() {
                when.push(format!("during {}", during.join(", ")));
            }
            let outside = list(r, "outside");
            if !outside.is_empty() {
                when.push(format!("outside {}", outside.join(", ")));
            }
            if when.is_empty() {
                when.push("at any time".into());
            }
            RuleView {
                index,
                id: text(r, "id"),
                action: text(r, "action"),
                document_title: policy
                    .document(&document)
                    .map(|d| d.title.clone())
                    .unwrap_or_default(),
                document,
                clause: text(r, "clause"),
                message: text(r, "message"),
                matches,
                applies_to,
                when,
                teacher_override: r
                    .get("teacher_override")
                    .and_then(toml::Value::as_bool)
                    .unwrap_or(false),
            }
        })
        .collect();
    Ok(PolicyView {
        source: source.to_string(),
        school: policy.school_name().to_string(),
        timezone: policy.timezone_name().to_string(),
        documents,
        groups: policy.all_groups().map(str::to_string).collect(),
        rules,
    })
}
