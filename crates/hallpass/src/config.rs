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

/// Known keys: top level, and for each table its own keys.
const TOP_LEVEL: &[(&str, &[&str])] = &[
    ("version", &[]),
    ("policy", &[]),
    ("catalog", &[]),
    ("database", &[]),
    ("data_dir", &[]),
    ("audit_key", &[]),
    (
        "dns",
        &[
            "listen",
            "upstreams",
            "rate_limit_per_client",
            "cache_entries",
            "upstream_timeout_ms",
        ],
    ),
    ("admin", &["listen"]),
    ("web", &["enabled", "listen", "secure_cookies"]),
    ("portal", &["enabled", "listen"]),
    ("radius", &["listen", "clients"]),
    (
        "shared_credentials",
        &["enabled", "grace_seconds", "document", "clause"],
    ),
    ("notify", &["relay", "from", "starttls"]),
    ("sessions", &["idle_minutes"]),
    (
        "safeguarding",
        &[
            "enabled",
            "lists",
            "content_kinds",
            "digest_at",
            "out_of_hours_email",
            "school_hours",
        ],
    ),
    (
        "mail",
        &[
            "listen",
            "milter_listen",
            "next_hop",
            "hostname",
            "max_message_bytes",
            "max_recipients",
            "max_line_bytes",
            "journal_days",
            "tls_cert",
            "tls_key",
            "authenticated_header",
        ],
    ),
    (
        "proxy",
        &[
            "listen",
            "parent",
            "connect_ports",
            "max_header_kib",
            "idle_timeout_s",
            "connect_timeout_s",
            "response_timeout_s",
            "max_connections",
            "auth",
            "inspect",
            "never_inspect",
            "ca_dir",
            "origin_ca",
            "inspect_cache",
        ],
    ),
    ("events", &["queue", "queue_mib", "batch", "linger_ms"]),
    (
        "retention",
        &[
            "dns_days",
            "web_days",
            "mail_days",
            "file_days",
            "logon_days",
            "content_days",
            "visits_days",
            "activity_days",
            "traffic_person_days",
            "traffic_totals_days",
            "batches_days",
        ],
    ),
];

fn check_keys(file: &str, text: &str, table: &toml_edit::Table, errors: &mut Vec<String>) {
    for (key, item) in table.iter() {
        let span = table
            .key(key)
            .and_then(|k| k.span())
            .or_else(|| item.span());
        let Some((_, children)) = TOP_LEVEL.iter().find(|(name, _)| *name == key) else {
            let known: Vec<&str> = TOP_LEVEL.iter().map(|(name, _)| *name).collect();
            errors.push(located(
                file,
                text,
                span,
                &format!("unknown key `{key}` (known: {})", known.join(", ")),
            ));
            continue;
        };
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
mod tests {
    use super::*;

    #[test]
    fn reads_a_full_file() {
        let text = r#"
version = 1
policy = "/etc/hallpass/policy.toml"
[dns]
listen = ["127.0.0.1:5300"]
upstreams = ["127.0.0.1:53", "[::1]:53"]
rate_limit_per_client = 200
[admin]
listen = "127.0.0.1:9153"
[events]
queue = 1000
queue_mib = 8
linger_ms = 5
[retention]
dns_days = 30
"#;
        let config = Config::parse("hallpass.toml", text).unwrap();
        assert_eq!(
            (
                config.events.queue,
                config.events.queue_mib,
                config.events.linger_ms
            ),
            (Some(1000), Some(8), Some(5))
        );
        assert_eq!(
            config.dns.listen,
            vec!["127.0.0.1:5300".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(config.dns.upstreams.len(), 2);
        assert_eq!(config.dns.rate_limit_per_client, Some(200));
        assert_eq!(config.retention.dns_days, Some(30));
        assert_eq!(
            config.policy.as_deref(),
            Some(Path::new("/etc/hallpass/policy.toml"))
        );
    }

    #[test]
    fn every_service_section_is_a_known_key() {
        let text = "version = 1\n[web]\nenabled = true\nlisten = \"127.0.0.1:8443\"\n\
                    [portal]\nlisten = \"127.0.0.1:8081\"\n\
                    [shared_credentials]\ngrace_seconds = 300\nclause = \"2.2\"\n\
                    [notify]\nrelay = \"mail.school.example:25\"\nfrom = \"ict@school.example\"\n";
        let config = Config::parse("h.toml", text).unwrap();
        assert_eq!(config.web.enabled, Some(true));
        assert_eq!(config.shared_credentials.grace_seconds, Some(300));
        assert_eq!(
            config.notify.relay.as_deref(),
            Some("mail.school.example:25")
        );
        let errors = Config::parse("h.toml", "version = 1\n[notify]\nrelai = \"x\"\n")
            .unwrap_err()
            .0;
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("h.toml:3:1: unknown key `notify.relai`")),
            "{errors:?}"
        );
    }

    #[test]
    fn reports_every_problem_with_its_position() {
        let text = "version = 1\ncolour = \"red\"\n[dns]\nlisten = [\"not an address\"]\nupstream = []\n[admin]\nlisten = 5\n";
        let errors = Config::parse("h.toml", text).unwrap_err().0;
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("h.toml:2:1: unknown key `colour`")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("h.toml:5:1: unknown key `dns.upstream`")),
            "{errors:?}"
        );
        assert_eq!(
            errors.len(),
            2,
            "value errors come after key errors: {errors:?}"
        );

        let text = "version = 1\n[dns]\nlisten = [\"not an address\"]\n[admin]\nlisten = 5\n";
        let errors = Config::parse("h.toml", text).unwrap_err().0;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(
            errors[0],
            "h.toml:3:10: dns.listen: invalid socket address syntax"
        );
        assert!(
            errors[1].starts_with("h.toml:5:10: admin.listen: invalid type: integer `5`"),
            "{errors:?}"
        );
    }

    #[test]
    fn the_proxy_section_is_read_and_checked() {
        let text = "version = 1\n[proxy]\nlisten = \"0.0.0.0:3128\"\nparent = \"filter.example:8080\"\n\
                    connect_ports = [443, 8443]\nauth = true\nidle_timeout_s = 20\n";
        let config = Config::parse("h.toml", text).unwrap();
        assert_eq!(config.proxy.listen, Some("0.0.0.0:3128".parse().unwrap()));
        assert_eq!(config.proxy.parent.as_deref(), Some("filter.example:8080"));
        assert_eq!(config.proxy.connect_ports, Some(vec![443, 8443]));
        assert_eq!(
            (config.proxy.auth, config.proxy.idle_timeout_s),
            (Some(true), Some(20))
        );
        let text = "version = 1\n[proxy]\nconnect_ports = []\nmax_header_kib = 2\n";
        let errors = Config::parse("h.toml", text).unwrap_err().0;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("h.toml:3:17: proxy.connect_ports: is empty"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("h.toml:4:18: proxy.max_header_kib: 2 is out of range"),
            "{errors:?}"
        );
        let unknown = "version = 1\n[proxy]\nsecure = true\n";
        let errors = Config::parse("h.toml", unknown).unwrap_err().0;
        assert!(
            errors[0].starts_with("h.toml:3:1: unknown key `proxy.secure`"),
            "{errors:?}"
        );
    }

    #[test]
    fn requires_the_version() {
        let errors = Config::parse("h.toml", "[dns]\n").unwrap_err().0;
        assert_eq!(
            errors,
            vec!["h.toml:1:1: missing `version = 1`".to_string()]
        );
        let errors = Config::parse("h.toml", "version = 7\n").unwrap_err().0;
        assert!(
            errors[0].starts_with("h.toml:1:11: version: this build reads"),
            "{errors:?}"
        );
    }

    #[test]
    fn absurd_numbers_empty_lists_and_two_stores_are_refused_with_their_place() {
        let text = "version = 1\n[dns]\nlisten = []\nupstreams = []\n[events]\nqueue = 99999999999999\n\
                    queue_mib = 0\nlinger_ms = 5000\n[retention]\ndns_days = 0\n";
        let errors = Config::parse("h.toml", text).unwrap_err().0;
        assert_eq!(
            errors,
            vec![
                "h.toml:3:10: dns.listen: is empty: give at least one ADDR:PORT, or leave the key \
                 out for 127.0.0.1:5300",
                "h.toml:4:13: dns.upstreams: is empty: give at least one resolver, or leave the \
                 key out to use /etc/resolv.conf",
                "h.toml:6:9: events.queue: 99999999999999 is out of range: expected 1 to 4194304 \
                 events",
                "h.toml:7:13: events.queue_mib: 0 is out of range: expected 1 to 4096 MiB",
                "h.toml:8:13: events.linger_ms: 5000 is out of range: expected 0 to 1000 \
                 milliseconds",
                "h.toml:10:12: retention.dns_days: 0 is out of range: expected 1 to 36500 days",
            ]
        );
        let errors = Config::parse(
            "h.toml",
            "version = 1\ndata_dir = \"/var/lib/hallpass\"\ndatabase = \"sqlite:///srv/h.db\"\n",
        )
        .unwrap_err()
        .0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "h.toml:3:12: database: a sqlite:// database and data_dir are both given"
            ),
            "{errors:?}"
        );
        // PostgreSQL with a data directory (for the spill file and the key) is fine.
        let config = Config::parse(
            "h.toml",
            "version = 1\ndata_dir = \"/var/lib/hallpass\"\ndatabase = \"postgres://h@db/h\"\n\
             [events]\nqueue = 4194304\nlinger_ms = 0\n",
        )
        .unwrap();
        assert_eq!(config.events.queue, Some(4_194_304));
    }

    #[test]
    fn mail_section_is_read_and_checked() {
        let text = "version = 1\n[mail]\nlisten = \"127.0.0.1:10025\"\nmilter_listen = \"127.0.0.1:10027\"\nnext_hop = \"127.0.0.1:10026\"\n\
                    max_recipients = 50\n";
        let config = Config::parse("h.toml", text).unwrap();
        assert_eq!(config.mail.listen, Some("127.0.0.1:10025".parse().unwrap()));
        assert_eq!(
            config.mail.milter_listen,
            Some("127.0.0.1:10027".parse().unwrap())
        );
        assert_eq!(config.mail.max_recipients, Some(50));
        let text = "version = 1\n[mail]\nrelay = \"x\"\n";
        let errors = Config::parse("h.toml", text).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "h.toml:3:1: unknown key `mail.relay` (known: listen, milter_listen, next_hop"
            ),
            "{errors:?}"
        );
        let text = "version = 1\n[mail]\nlisten = \"localhost\"\n";
        let errors = Config::parse("h.toml", text).unwrap_err().0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            errors[0],
            "h.toml:3:10: mail.listen: invalid socket address syntax"
        );
    }

    #[test]
    fn radius_clients_need_secrets_and_a_listener_needs_a_client() {
        let text = "version = 1\n[radius]\nlisten = \"0.0.0.0:1813\"\n\
                    [[radius.clients]]\nnetwork = \"10.20.0.0/16\"\nsecret = \"s3cret\"\n";
        let config = Config::parse("h.toml", text).unwrap();
        assert_eq!(config.radius.clients.len(), 1);
        assert_eq!(config.radius.clients[0].network.to_string(), "10.20.0.0/16");
        assert!(
            !format!("{config:?}").contains("s3cret"),
            "the secret is not printed"
        );

        let text = "version = 1\n[radius]\nlisten = \"0.0.0.0:1813\"\n\
                    [[radius.clients]]\nnetwork = \"10.20.0.0/16\"\nsecret = \"\"\n\
                    [[radius.clients]]\nnetwork = \"10.300.0.0/16\"\nsecret = \"x\"\n";
        let errors = Config::parse("h.toml", text).unwrap_err().0;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("h.toml:4:1: radius.clients: invalid"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("h.toml:6:10: radius.clients.secret: is empty"),
            "{errors:?}"
        );

        let errors = Config::parse(
            "h.toml",
            "version = 1\n[radius]\nlisten = \"0.0.0.0:1813\"\n",
        )
        .unwrap_err()
        .0;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("h.toml:3:10: radius.listen: no [[radius.clients]]"),
            "{errors:?}"
        );
        let errors = Config::parse(
            "h.toml",
            "version = 1\n[[radius.clients]]\nnetwork = \"10.0.0.0/8\"\n",
        )
        .unwrap_err()
        .0;
        assert!(errors[0].contains("missing field `secret`"), "{errors:?}");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let errors = Config::parse("h.toml", "version = 1\n[dns\n")
            .unwrap_err()
            .0;
        assert!(errors[0].starts_with("h.toml:2:"), "{errors:?}");
    }
}
