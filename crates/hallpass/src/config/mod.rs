//! The `hallpass serve` configuration file.
//!
//! TOML with a `version` key. Every problem in the file (unknown keys, wrong types, bad
//! addresses) is reported at once as `FILE:LINE:COL: message`, so a network manager
//! fixes the file in one pass instead of one error per restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The only configuration format version this build reads.
pub const CONFIG_VERSION: i64 = 1;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub version: i64,
    /// Policy file; the built-in demo school's policy when absent.
    pub policy: Option<PathBuf>,
    /// Compiled category index, UT1 tarball or directory; the demo catalog when absent.
    pub catalog: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://...`; `DATA_DIR/hallpass.db` when absent. A
    /// `sqlite://` database and `data_dir` together are refused (two places for one store).
    pub database: Option<String>,
    /// Where the database, spill file, audit key and other state live (with PostgreSQL:
    /// the spill file and the audit key).
    pub data_dir: Option<PathBuf>,
    /// The audit key file; `DATA_DIR/audit.key` when absent.
    pub audit_key: Option<PathBuf>,
    pub dns: DnsConfig,
    pub admin: AdminConfig,
    pub web: crate::cmd::serve::web::WebSection,
    pub portal: crate::cmd::serve::portal::PortalSection,
    pub radius: crate::cmd::serve::radius::RadiusSection,
    pub shared_credentials: crate::cmd::serve::shared_credentials::SharedCredentialsSection,
    pub notify: crate::cmd::serve::mailer::NotifySection,
    pub sessions: crate::cmd::serve::followers::SessionsSection,
    pub safeguarding: crate::cmd::serve::safeguarding::SafeguardingSection,
    pub mail: crate::cmd::serve::mail::MailSection,
    pub proxy: crate::cmd::serve::proxy::ProxySection,
    pub events: EventsConfig,
    pub retention: RetentionConfig,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Addresses to answer DNS on (UDP and TCP).
    pub listen: Vec<SocketAddr>,
    /// Upstream resolvers, tried in order.
    pub upstreams: Vec<SocketAddr>,
    /// Queries per second allowed per client address; absent means no limit (a school's
    /// NAT can put hundreds of pupils behind one address).
    pub rate_limit_per_client: Option<u32>,
    /// Cached answers kept at most.
    pub cache_entries: Option<usize>,
    /// How long to wait for one upstream before trying the next, in milliseconds.
    pub upstream_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the admin HTTP port (`/metrics`, `/healthz`).
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Events held in memory before they spill to the local file.
    pub queue: Option<usize>,
    /// Memory (MiB, approximate) the held events may take before they spill.
    pub queue_mib: Option<u64>,
    /// Events written per database transaction at most.
    pub batch: Option<usize>,
    /// Milliseconds a batch may wait to fill before it is written (0, the default, writes
    /// whatever has arrived at once; more means fewer, larger transactions, worth it
    /// with a remote PostgreSQL, at some cost in DNS latency on a busy host).
    pub linger_ms: Option<u64>,
}

/// Retention periods in days; absent keys keep the store's defaults.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    pub dns_days: Option<u32>,
    pub web_days: Option<u32>,
    pub mail_days: Option<u32>,
    pub file_days: Option<u32>,
    pub logon_days: Option<u32>,
    pub content_days: Option<u32>,
    /// Allowed DNS queries (visits).
    pub visits_days: Option<u32>,
    /// The per-person hourly activity roll-up (what investigations and heads of year read).
    pub activity_days: Option<u32>,
    /// Per-person daily traffic counts (absent: as long as the events they count).
    pub traffic_person_days: Option<u32>,
    /// The anonymous daily traffic totals (absent: kept).
    pub traffic_totals_days: Option<u32>,
    /// The event writer's replay records (absent: the longest period).
    pub batches_days: Option<u32>,
}

/// Every problem found in one configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigErrors(vec![format!("{}: {error}", path.display())]))?;
        Config::parse(&path.display().to_string(), &text)
    }

    /// Parses and checks `text`; `file` names it in messages.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigErrors> {
        let document: toml_edit::Document<String> =
            text.parse().map_err(|error: toml_edit::TomlError| {
                ConfigErrors(vec![located(file, text, error.span(), error.message())])
            })?;
        let mut errors = Vec::new();
        check_keys(file, text, document.as_table(), &mut errors);
        match document.get("version").map(|item| item.as_integer()) {
            None => errors.push(format!("{file}:1:1: missing `version = {CONFIG_VERSION}`")),
            Some(Some(CONFIG_VERSION)) => {}
            Some(_) => errors.push(located(
                file,
                text,
                document.get("version").and_then(|item| item.span()),
                &format!("version: this build reads configuration version {CONFIG_VERSION}"),
            )),
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        // Keys are known; what is left are bad values, which serde reports one at a time.
        // Decoding each value on its own reports them all, each at its own position.
        let values: toml::Table = toml::from_str(text).map_err(|error| {
            ConfigErrors(vec![located(file, text, error.span(), error.message())])
        })?;
        for (key, value) in values.clone() {
            let item = &document[key.as_str()];
            let pieces: Vec<(toml::Value, Option<std::ops::Range<usize>>, String)> =
                match (value, item.as_table_like()) {
                    (toml::Value::Table(children), Some(table)) => children
                        .into_iter()
                        .map(|(child, value)| {
                            let span = table.get(&child).and_then(|item| item.span());
                            let mut one = toml::Table::new();
                            one.insert(child.clone(), value);
                            (toml::Value::Table(one), span, format!("{key}.{child}"))
                        })
                        .collect(),
                    (value, _) => vec![(value, item.span(), key.clone())],
                };
            for (value, span, name) in pieces {
                let mut one = toml::Table::new();
                one.insert(key.clone(), value);
                one.insert("version".into(), toml::Value::Integer(CONFIG_VERSION));
                match one.try_into::<Config>() {
                    Err(error) => errors.push(located(
                        file,
                        text,
                        span,
                        &format!("{name}: {}", error.message()),
                    )),
                    Ok(_) => {
                        if let Some(problem) = out_of_range(&name, &document) {
                            errors.push(located(file, text, span, &format!("{name}: {problem}")));
                        }
                    }
                }
            }
        }
        if let (Some(database), Some(_)) = (
            document.get("database").and_then(|item| item.as_str()),
            document.get("data_dir"),
        ) && database.starts_with("sqlite:")
        {
            errors.push(located(
                file,
                text,
                document.get("database").and_then(|item| item.span()),
                "database: a sqlite:// database and data_dir are both given: give one \
                 (data_dir alone keeps the database in DATA_DIR/hallpass.db; a sqlite:// \
                 database keeps its spill file and audit key beside it). data_dir goes with \
                 a postgres:// database",
            ));
        }
        radius_problems(file, text, &document, &mut errors);
        if !errors.is_empty() {
            errors.sort_by_key(|message| position_of(message));
            return Err(ConfigErrors(errors));
        }
        values.try_into().map_err(|error: toml::de::Error| {
            ConfigErrors(vec![format!("{file}: {}", error.message())])
        })
    }
}

/// The range every number in the file must be in: (key, least, most, what it counts).
/// Values outside are mistakes (a queue of 10^14 events, a retention of 0 days) and are
/// refused with the range, not clamped.
const RANGES: &[(&str, i64, i64, &str)] = &[
    ("dns.cache_entries", 1, 10_000_000, "answers"),
    ("dns.upstream_timeout_ms", 10, 60_000, "milliseconds"),
    ("events.queue", 1, 4_194_304, "events"),
    ("events.queue_mib", 1, 4_096, "MiB"),
    ("events.batch", 1, 100_000, "events"),
    ("events.linger_ms", 0, 1_000, "milliseconds"),
    ("retention.dns_days", 1, 36_500, "days"),
    ("retention.web_days", 1, 36_500, "days"),
    ("retention.mail_days", 1, 36_500, "days"),
    ("retention.file_days", 1, 36_500, "days"),
    ("retention.logon_days", 1, 36_500, "days"),
    ("retention.content_days", 1, 36_500, "days"),
    ("retention.visits_days", 1, 36_500, "days"),
    ("retention.activity_days", 1, 36_500, "days"),
    ("proxy.max_header_kib", 8, 1_024, "KiB"),
    ("proxy.idle_timeout_s", 1, 3_600, "seconds"),
    ("proxy.connect_timeout_s", 1, 300, "seconds"),
    ("proxy.response_timeout_s", 1, 3_600, "seconds"),
    ("proxy.max_connections", 1, 1_000_000, "connections"),
    ("proxy.inspect_cache", 1, 100_000, "certificates"),
];

/// Lists that may be left out but not given empty (empty would silently mean a default).
const NON_EMPTY: &[(&str, &str)] = &[
    (
        "dns.listen",
        "give at least one ADDR:PORT, or leave the key out for 127.0.0.1:5300",
    ),
    (
        "dns.upstreams",
        "give at least one resolver, or leave the key out to use /etc/resolv.conf",
    ),
    (
        "proxy.connect_ports",
        "give at least one port (443 for HTTPS), or leave the key out for [443]",
    ),
];

/// What is wrong with the value of `name` (`table.key`) that its type allows.
fn out_of_range(name: &str, document: &toml_edit::Document<String>) -> Option<String> {
    let (table, key) = name.split_once('.').unwrap_or(("", name));
    let item = if table.is_empty() {
        document.get(key)
    } else {
        document.get(table)?.as_table_like()?.get(key)
    }?;
    if let Some((_, why)) = NON_EMPTY.iter().find(|(n, _)| *n == name) {
        return item
            .as_array()
            .is_some_and(|a| a.is_empty())
            .then(|| format!("is empty: {why}"));
    }
    let (_, least, most, unit) = RANGES.iter().find(|(n, ..)| *n == name)?;
    let value = item.as_integer()?;
    (value < *least || value > *most)
        .then(|| format!("{value} is out of range: expected {least} to {most} {unit}"))
}

/// The file's top-level keys, in `Config`'s order, each with its table's keys (none for
/// a plain value). The tables' keys are read from their serde structs, so a new field is
/// known here at once; `sections_are_the_config_fields` checks this list against `Config`.
const SECTIONS: &[(&str, KeysOf)] = &[
    ("version", no_keys),
    ("policy", no_keys),
    ("catalog", no_keys),
    ("database", no_keys),
    ("data_dir", no_keys),
    ("audit_key", no_keys),
    ("dns", field_names::<DnsConfig>),
    ("admin", field_names::<AdminConfig>),
    ("web", field_names::<crate::cmd::serve::web::WebSection>),
    (
        "portal",
        field_names::<crate::cmd::serve::portal::PortalSection>,
    ),
    (
        "radius",
        field_names::<crate::cmd::serve::radius::RadiusSection>,
    ),
    (
        "shared_credentials",
        field_names::<crate::cmd::serve::shared_credentials::SharedCredentialsSection>,
    ),
    (
        "notify",
        field_names::<crate::cmd::serve::mailer::NotifySection>,
    ),
    (
        "sessions",
        field_names::<crate::cmd::serve::followers::SessionsSection>,
    ),
    (
        "safeguarding",
        field_names::<crate::cmd::serve::safeguarding::SafeguardingSection>,
    ),
    ("mail", field_names::<crate::cmd::serve::mail::MailSection>),
    (
        "proxy",
        field_names::<crate::cmd::serve::proxy::ProxySection>,
    ),
    ("events", field_names::<EventsConfig>),
    ("retention", field_names::<RetentionConfig>),
];

/// A table's keys, read when needed.
type KeysOf = fn() -> &'static [&'static str];

fn no_keys() -> &'static [&'static str] {
    &[]
}

/// The field names serde's derive gives `T`: what it tells `deserialize_struct`, caught
/// by a deserializer that reads nothing.
fn field_names<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::value::Error;

    struct Probe<'a>(&'a std::cell::Cell<&'static [&'static str]>);

    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = Error;

        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(serde::de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Error> {
            self.0.set(fields);
            Err(serde::de::Error::custom("only the field names were wanted"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }

    let fields = std::cell::Cell::new(&[][..]);
    // The error is the probe's own: it stops serde once the names are caught.
    let _ = T::deserialize(Probe(&fields));
    fields.get()
}

fn check_keys(file: &str, text: &str, table: &toml_edit::Table, errors: &mut Vec<String>) {
    for (key, item) in table.iter() {
        let span = table
            .key(key)
            .and_then(|k| k.span())
            .or_else(|| item.span());
        let Some((_, children)) = SECTIONS.iter().find(|(name, _)| *name == key) else {
            let known: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
            errors.push(located(
                file,
                text,
                span,
                &format!("unknown key `{key}` (known: {})", known.join(", ")),
            ));
            continue;
        };
        let children = children();
        if children.is_empty() {
            continue;
        }
        let Some(inner) = item.as_table_like() else {
            errors.push(located(
                file,
                text,
                span,
                &format!("`{key}` must be a table"),
            ));
            continue;
        };
        for (child, child_item) in inner.iter() {
            if !children.contains(&child) {
                let span = inner
                    .key(child)
                    .and_then(|k| k.span())
                    .or_else(|| child_item.span());
                errors.push(located(
                    file,
                    text,
                    span,
                    &format!(
                        "unknown key `{key}.{child}` (known: {})",
                        children.join(", ")
                    ),
                ));
            }
        }
    }
}

/// `[radius]`: every client needs a secret, and a listener needs a client.
fn radius_problems(
    file: &str,
    text: &str,
    document: &toml_edit::Document<String>,
    errors: &mut Vec<String>,
) {
    let Some(radius) = document.get("radius").and_then(|item| item.as_table_like()) else {
        return;
    };
    let clients = radius.get("clients");
    // (the secret, its span) of each client, whether written [[radius.clients]] or inline.
    let mut secrets: Vec<(Option<&str>, Option<std::ops::Range<usize>>)> = Vec::new();
    if let Some(tables) = clients.and_then(|item| item.as_array_of_tables()) {
        for table in tables.iter() {
            let secret = table.get("secret");
            secrets.push((
                secret.and_then(|s| s.as_str()),
                secret.and_then(|s| s.span()).or_else(|| table.span()),
            ));
        }
    } else if let Some(array) = clients.and_then(|item| item.as_array()) {
        for value in array.iter() {
            let secret = value.as_inline_table().and_then(|t| t.get("secret"));
            secrets.push((
                secret.and_then(|s| s.as_str()),
                secret.and_then(|s| s.span()).or_else(|| value.span()),
            ));
        }
    }
    for (secret, span) in &secrets {
        if *secret == Some("") {
            errors.push(located(
                file,
                text,
                span.clone(),
                "radius.clients.secret: is empty: give the shared secret the NAS is configured with",
            ));
        }
    }
    if let Some(listen) = radius.get("listen")
        && secrets.is_empty()
    {
        errors.push(located(
            file,
            text,
            listen.span(),
            "radius.listen: no [[radius.clients]]: give at least one network and secret, or \
             every packet would be dropped",
        ));
    }
}

/// The (line, column) that `located` wrote into a message, for sorting.
fn position_of(message: &str) -> (usize, usize) {
    let mut parts = message.split(": ").next().unwrap_or("").rsplit(':');
    let column = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let line = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
    (line, column)
}

/// `FILE:LINE:COL: message` for a byte span of `text` (1-based line and column).
fn located(file: &str, text: &str, span: Option<std::ops::Range<usize>>, message: &str) -> String {
    let offset = span.map(|range| range.start).unwrap_or(0).min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    format!("{file}:{line}:{column}: {message}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
