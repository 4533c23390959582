//! `hallpass policy check` and `hallpass explain`: validate acceptable-use policy files
//! and show, step by step, what a policy decides for one request.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use hallpass_catalog::Catalog;
use hallpass_policy::{
    CategoryMask, CategoryVocab, Decision, Diagnostic, FileType, GroupSet, Identity, Live, Policy,
    PolicyDoc, Request, Severity,
};

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Check policy files for errors and shadowed rules.
    #[command(
        long_about = "Check acceptable-use policy files before putting them live.\n\n\
Every problem is reported at once as FILE:LINE:COL: message, naming the field \
(unknown keys, unknown groups/periods/categories, malformed times or CIDR ranges, \
bad time zones, duplicate ids...). Rules that can never match because an earlier rule \
already matches everything they would are reported as warnings.\n\n\
Results (each problem, then `FILE: ok (N rules, W warnings)` or `FILE: N errors`) go \
to standard output, so they can be piped to `grep` or `head`; only a file that cannot \
be read is reported on standard error.\n\n\
Exit status: 0 when every file is valid (warnings allowed), 1 when any file has errors, \
2 when a file cannot be read (the other files are still checked).\n\n\
Examples:\n  \
hallpass policy check examples/policies/wcs.toml\n  \
hallpass policy check /etc/hallpass/policy.toml --catalog /var/lib/hallpass/catalog.idx"
    )]
    Check {
        /// Policy files (TOML) to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Category catalog to check category names against (default: any name accepted).
        #[arg(long, value_name = "PATH")]
        catalog: Option<PathBuf>,
    },
}

/// Show what the policy decides for one request, and why.
// `after_help`, not `long_about`: main.rs's doc comment on the subcommand sets the about text.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Give the person's groups (--group, repeatable) or the client's IP address (--ip: the \
groups whose networks contain it, otherwise the policy's unidentified group). The \
answer names the verdict, the rule, the document and clause it cites, the block page \
message and the alert raised, followed by every rule considered and why it did or did \
not match.\n\n\
Without --catalog the target has no categories, so only rules on domains, URL \
prefixes and file types (and the defaults) can match.\n\n\
Examples:\n  \
hallpass explain --policy examples/policies/wcs.toml --group students https://www.hotmail.com/\n  \
hallpass explain --policy wcs.toml --group students --at '2026-10-05 12:50' example.org\n  \
hallpass explain --policy wcs.toml --ip 10.50.3.7 --at 2026-10-05T21:30:00Z --json example.org/setup.exe"
)]
pub struct ExplainArgs {
    /// The policy file.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// Category catalog used to classify the target.
    #[arg(long, value_name = "PATH")]
    catalog: Option<PathBuf>,
    /// A group the person belongs to (repeat for several).
    #[arg(
        long = "group",
        value_name = "NAME",
        required_unless_present = "ip",
        conflicts_with = "ip"
    )]
    groups: Vec<String>,
    /// The client's IP address, when the person is not known.
    #[arg(long, value_name = "ADDR")]
    ip: Option<IpAddr>,
    /// When: RFC 3339 (2026-10-05T09:30:00+01:00) or "YYYY-MM-DD HH:MM" in the school's time zone. Default: now.
    #[arg(long, value_name = "DATETIME")]
    at: Option<String>,
    /// Print one JSON object instead of the explanation.
    #[arg(long)]
    json: bool,
    /// A URL (https://example.com/path) or a host name.
    #[arg(value_name = "TARGET")]
    target: String,
}

pub fn run(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Check { files, catalog } => check(&files, catalog.as_deref()),
    }
}

/// `--catalog`: an index from `hallpass catalog import`, a UT1 tarball or directory
/// (imported in memory), or `demo`.
fn load_catalog(path: &Path) -> anyhow::Result<Catalog> {
    crate::cmd::catalog::open_any(path, hallpass_catalog::HostLookups::Walk)
        .with_context(|| format!("--catalog {}", path.display()))
}

/// The category names a policy may use: the catalog's (and its aliases), or any name.
fn vocab(catalog: Option<&Catalog>) -> CategoryVocab {
    match catalog {
        Some(catalog) => CategoryVocab::new(catalog.vocabulary()),
        None => CategoryVocab::open(),
    }
}

/// `policy check` results: on stdout.
fn say_diagnostics(diags: &[Diagnostic]) -> std::io::Result<()> {
    for d in diags {
        say!("{d}");
    }
    Ok(())
}

/// `explain`'s reason for not answering: on stderr.
fn tell_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        tell!("{d}");
    }
}

/// A compiled policy and its warnings, or every error in the file.
type Compiled = Result<(Policy, Vec<Diagnostic>), Vec<Diagnostic>>;

/// Parse and compile one file; the inner `Err` carries its diagnostics.
fn load(path: &Path, vocab: &CategoryVocab) -> anyhow::Result<Compiled> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    Ok(PolicyDoc::parse(&name, &text).and_then(|mut doc| {
        // Declaration texts given as `text_file` are read beside the policy.
        hallpass_engine::read_declaration_files(&mut doc, &name).map_err(|e| e.0)?;
        doc.compile(vocab)
    }))
}

fn check(files: &[PathBuf], catalog: Option<&Path>) -> anyhow::Result<ExitCode> {
    let catalog = catalog.map(load_catalog).transpose()?;
    let vocab = vocab(catalog.as_ref());
    let mut failed = false;
    let mut unreadable = false;
    for path in files {
        let compiled = match load(path, &vocab) {
            Ok(compiled) => compiled,
            Err(error) => {
                tell!("error: {}", crate::describe_error(&error));
                unreadable = true;
                continue;
            }
        };
        match compiled {
            Ok((policy, warnings)) => {
                say_diagnostics(&warnings)?;
                say!(
                    "{}: ok ({} rules, {} warning{})",
                    path.display(),
                    policy.rule_count(),
                    warnings.len(),
                    if warnings.len() == 1 { "" } else { "s" }
                );
            }
            Err(errors) => {
                say_diagnostics(&errors)?;
                let n = errors
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .count();
                say!(
                    "{}: {n} error{}",
                    path.display(),
                    if n == 1 { "" } else { "s" }
                );
                failed = true;
            }
        }
    }
    Ok(if unreadable {
        ExitCode::from(2)
    } else if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Split a URL or bare host into host and path (path keeps its query).
fn split_target(target: &str) -> (&str, Option<&str>) {
    let rest = target.split_once("://").map_or(target, |(_, r)| r);
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    (host, path.filter(|p| p.starts_with('/')))
}

/// The extension of the path's last segment, e.g. `exe` for `/dl/setup.exe?x=1`.
fn extension(path: Option<&str>) -> Option<&str> {
    let path = path?.split(['?', '#']).next()?;
    let last = path.rsplit('/').next()?;
    let (stem, ext) = last.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then_some(ext)
}

pub fn explain(args: ExplainArgs, clock: &hallpass_clock::Clock) -> anyhow::Result<ExitCode> {
    let catalog = args.catalog.as_deref().map(load_catalog).transpose()?;
    let vocab = vocab(catalog.as_ref());
    let (policy, _warnings) = match load(&args.policy, &vocab)? {
        Ok(ok) => ok,
        Err(errors) => {
            tell_diagnostics(&errors);
            return Ok(ExitCode::from(1));
        }
    };
    let identity = match args.ip {
        Some(ip) => Identity::Ip(ip),
        None => {
            let mut set = GroupSet::EMPTY;
            for name in &args.groups {
                let id = policy.group_id(name).with_context(|| {
                    format!(
                        "unknown group `{name}` (groups: {})",
                        policy.all_groups().collect::<Vec<_>>().join(", ")
                    )
                })?;
                set.insert(id);
            }
            Identity::Groups(set)
        }
    };
    let now = match &args.at {
        Some(text) => policy.parse_time(text)?,
        None => clock.now(),
    };
    let (host, path) = split_target(&args.target);
    anyhow::ensure!(!host.is_empty(), "`{}` has no host name", args.target);
    let file_type = extension(path).map(|e| FileType {
        extension: Some(e),
        mime: None,
    });
    let request = Request {
        identity,
        person: None,
        host,
        path,
        // Without a catalog the target has no categories: only domain and URL rules apply.
        categories: catalog.as_ref().map_or(CategoryMask::EMPTY, |catalog| {
            CategoryMask::from_bits(catalog.lookup_url(&args.target).bits())
        }),
        file_type,
    };
    let live = Live::none();
    let (decision, trace) = policy.explain(&request, &live, now);
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&to_json(&policy, &decision))?
        );
    } else {
        print_human(&policy, &decision, &trace, host, now)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(policy: &Policy, d: &Decision<'_>) -> serde_json::Value {
    serde_json::json!({
        "verdict": d.verdict.as_str(),
        "rule": d.rule.map(|r| r.id),
        "document": d.document,
        "clause": d.clause,
        "message": d.message,
        "categories": policy.category_names(d.categories),
        "alert": d.alert.map(|a| serde_json::json!({ "kind": a.kind.as_str(), "severity": a.severity })),
        "override": d.override_allowed,
        "overridden": d.overridden,
        "default_group": d.default_group.and_then(|g| policy.group_name(g)),
        "groups": policy.group_names(d.groups),
    })
}

fn print_human(
    policy: &Policy,
    d: &Decision<'_>,
    trace: &[hallpass_policy::TraceStep<'_>],
    host: &str,
    now: jiff::Timestamp,
) -> std::io::Result<()> {
    let local = now.to_zoned(policy.timezone().clone());
    say!("{} for {host}", d.verdict.as_str().to_uppercase());
    say!(
        "  at:        {} ({})",
        local.strftime("%a %Y-%m-%d %H:%M %Z"),
        now
    );
    say!("  groups:    {}", policy.group_names(d.groups).join(", "));
    match (d.rule, d.default_group) {
        (Some(r), _) => say!("  rule:      {} (rules[{}])", r.id, r.index),
        (None, Some(g)) => say!(
            "  rule:      none matched; default of group `{}`",
            policy.group_name(g).unwrap_or("?")
        ),
        (None, None) => say!("  rule:      none (sanction in force)"),
    }
    if let (Some(doc), Some(clause)) = (d.document, d.clause) {
        let title = policy.document(doc).map_or(doc, |x| x.title.as_str());
        say!("  cites:     {title}, clause {clause}");
    }
    if !d.message.is_empty() {
        say!("  message:   {}", d.message);
    }
    let cats = policy.category_names(d.categories);
    say!(
        "  categories: {}",
        if cats.is_empty() {
            "(none)".into()
        } else {
            cats.join(", ")
        }
    );
    match d.alert {
        Some(a) => say!("  alert:     {}, severity {}", a.kind.as_str(), a.severity),
        None => say!("  alert:     none"),
    }
    say!(
        "  teacher override allowed: {}",
        if d.override_allowed { "yes" } else { "no" }
    );
    say!("trace:");
    for step in trace {
        say!("  {}", policy.describe(step));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_host_and_path() {
        assert_eq!(
            split_target("https://user@Example.com:8443/a/b.exe?x"),
            ("Example.com", Some("/a/b.exe?x"))
        );
        assert_eq!(split_target("example.com"), ("example.com", None));
        assert_eq!(
            split_target("example.com/dl/setup.msi"),
            ("example.com", Some("/dl/setup.msi"))
        );
        assert_eq!(
            split_target("http://[2001:db8::1]:80/"),
            ("2001:db8::1", Some("/"))
        );
        assert_eq!(extension(Some("/dl/setup.EXE?x=1")), Some("EXE"));
        assert_eq!(extension(Some("/dir.d/")), None);
        assert_eq!(extension(Some("/.hidden")), None);
    }
}
