//! `hallpass catalog ...`: import category lists into an index, look up hosts and URLs,
//! show statistics, fetch updates, compare two indexes. (Owned by the catalog work.)
//!
//! Results go to stdout through `writeln!` with `?` (a closed stdout ends the command
//! with 141, see `main`); diagnostics go to stderr through `tell!`, which never panics
//! on a closed stderr (`2>&1 | head`): the exit status still tells.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use hallpass_catalog::{Catalog, CatalogBuilder, HostLookups, ImportReport, ListFormat};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Build a category index from lists: UT1 blacklists, hosts files, adblock lists or
    /// plain domain lists.
    ///
    /// Each SOURCE is one of:
    ///   - a UT1 `blacklists.tar.gz` (as downloaded) or its extracted `blacklists/`
    ///     folder: every category folder's `domains`, `urls`, `expressions` and `usage`
    ///     files are read, and folder symlinks (e.g. `porn -> adult`) become aliases;
    ///   - one UT1 category folder (named after the folder, or --category);
    ///   - a list file (hosts `0.0.0.0 name`, adblock `||name^`, or one domain per
    ///     line), imported under --category; the format is detected from the content
    ///     unless --format is given.
    ///
    /// Names are lower-cased, trailing dots dropped, international names converted to
    /// punycode; duplicates are merged. Lines that cannot be read are reported on
    /// stderr as FILE:LINE (the first few of them) and skipped; they never stop the
    /// import. The index is written to a temporary file beside --output and renamed
    /// into place, so running services never see a half-written index.
    ///
    /// Example: hallpass catalog import blacklists.tar.gz --output /var/lib/hallpass/catalog.idx
    ///          hallpass catalog import blacklists.tar.gz school-blocks.txt --category school_blocks --output catalog.idx
    #[command(verbatim_doc_comment)]
    Import {
        /// Lists to import (UT1 .tar.gz or folder, hosts, adblock or plain lists).
        #[arg(required = true, value_name = "SOURCE")]
        sources: Vec<PathBuf>,
        /// Where to write the index (replaced atomically).
        #[arg(long, short, value_name = "PATH")]
        output: PathBuf,
        /// Category for list files that carry none (hosts, adblock, plain lists).
        #[arg(long, value_name = "NAME")]
        category: Option<String>,
        /// Format of list files: auto, plain, hosts or adblock.
        #[arg(long, default_value = "auto", value_name = "FORMAT")]
        format: ListFormat,
    },
    /// Show the categories of hosts or URLs, one line per target.
    ///
    /// A TARGET with a `/` or a scheme is looked up as a URL (host categories, URL
    /// prefixes and expressions); otherwise as a host name or IP address (the name and
    /// every parent domain). Output: `TARGET<TAB>cat1,cat2` (`-` when none), or with
    /// --json one object per line: {"target": ..., "categories": [...]}.
    ///
    /// --catalog takes an index file, or a UT1 tarball or folder (imported in memory
    /// first, which takes a few seconds), or `demo` for the built-in demo lists.
    ///
    /// Example: hallpass catalog lookup --catalog catalog.idx www.bet365.com http://example.org/banner/x.gif
    #[command(verbatim_doc_comment)]
    Lookup {
        /// Index file, UT1 tarball or folder, or `demo`.
        #[arg(long, value_name = "PATH")]
        catalog: PathBuf,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Host names, IP addresses or URLs.
        #[arg(required = true, value_name = "TARGET")]
        targets: Vec<String>,
    },
    /// Show what an index holds: categories, aliases, entries per category, file size.
    ///
    /// Checks the index's header and checksum first; a corrupt, truncated or
    /// wrong-version file is reported as such.
    ///
    /// Example: hallpass catalog stats /var/lib/hallpass/catalog.idx
    #[command(verbatim_doc_comment)]
    Stats {
        /// Index file.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Print the figures as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Download a UT1-style blacklists tarball and replace the index with it.
    ///
    /// The download goes to a temporary file beside --output; it is imported and the
    /// new index renamed over --output only when everything succeeded. A failed
    /// download (network error, HTTP error status, damaged archive) leaves the old
    /// index exactly as it was, and exits non-zero. Run it from cron or a systemd
    /// timer; running services pick the new index up on reload.
    ///
    /// Example: hallpass catalog fetch https://example.org/blacklists/blacklists.tar.gz --output /var/lib/hallpass/catalog.idx
    #[command(verbatim_doc_comment)]
    Fetch {
        /// http:// or https:// address of a .tar.gz in UT1 layout.
        #[arg(value_name = "URL")]
        url: String,
        /// Index to replace.
        #[arg(long, short, value_name = "PATH")]
        output: PathBuf,
        /// Give up on the download after this many seconds.
        #[arg(long, default_value_t = 600, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Compare two indexes: per category, how many entries were added and removed.
    ///
    /// Entries are hosts, URL prefixes and expressions; a host moving from one
    /// category to another counts as removed from one and added to the other. Either
    /// side may also be a UT1 tarball or folder. Only changed categories are shown.
    ///
    /// Example: hallpass catalog diff catalog-old.idx catalog.idx
    #[command(verbatim_doc_comment)]
    Diff {
        /// The older index.
        #[arg(value_name = "OLD")]
        old: PathBuf,
        /// The newer index.
        #[arg(value_name = "NEW")]
        new: PathBuf,
    },
}

pub fn run(command: CatalogCommand) -> anyhow::Result<ExitCode> {
    match command {
        CatalogCommand::Import {
            sources,
            output,
            category,
            format,
        } => import(&sources, &output, category.as_deref(), format),
        CatalogCommand::Lookup {
            catalog,
            json,
            targets,
        } => lookup(&catalog, json, &targets),
        CatalogCommand::Stats { path, json } => stats(&path, json),
        CatalogCommand::Fetch {
            url,
            output,
            timeout,
        } => fetch(&url, &output, Duration::from_secs(timeout))
            .with_context(|| format!("fetch failed; {} was not changed", output.display())),
        CatalogCommand::Diff { old, new } => diff(&old, &new),
    }
}

fn byte_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

fn spinner(what: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn size_of(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m.len(),
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| !t.is_symlink()))
                    .map(|e| size_of(&e.path()))
                    .sum()
            })
            .unwrap_or(0),
        _ => 0,
    }
}

fn print_report(source: &str, report: &ImportReport) {
    if report.bad_lines == 0 {
        return;
    }
    tell!(
        "warning: {source}: {} bad line(s) skipped{}",
        report.bad_lines,
        if report.bad_lines as usize > report.examples.len() {
            format!(", first {} shown", report.examples.len())
        } else {
            String::new()
        }
    );
    for bad in &report.examples {
        tell!("  {bad}");
    }
}

fn import_into(
    builder: &mut CatalogBuilder,
    sources: &[PathBuf],
    category: Option<&str>,
    format: ListFormat,
) -> anyhow::Result<ImportReport> {
    let total: u64 = sources.iter().map(|s| size_of(s)).sum();
    let bar = byte_bar(total, "importing");
    let mut all = ImportReport::default();
    for source in sources {
        let report = builder
            .import_path(source, category, format, &mut |n| bar.inc(n))
            .with_context(|| format!("importing {}", source.display()));
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                bar.abandon();
                return Err(e);
            }
        };
        bar.suspend(|| print_report(&source.display().to_string(), &report));
        all.merge(report);
    }
    bar.finish_and_clear();
    Ok(all)
}

fn import(
    sources: &[PathBuf],
    output: &Path,
    category: Option<&str>,
    format: ListFormat,
) -> anyhow::Result<ExitCode> {
    let start = hallpass_clock::Clock::system().instant();
    let mut builder = CatalogBuilder::new();
    let report = import_into(&mut builder, sources, category, format)?;
    let bar = spinner("compiling index");
    let bytes = builder.write_to(output);
    bar.finish_and_clear();
    let bytes = bytes.with_context(|| format!("writing {}", output.display()))?;
    tell!(
        "wrote {}: {} entries from {} file(s), {} bad line(s), {} bytes, {:.1}s",
        output.display(),
        report.entries,
        report.files,
        report.bad_lines,
        bytes,
        start.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens a catalog for any command or service: an index file (memory-mapped), a UT1
/// tarball or folder (imported in memory; bad lines reported on stderr), or `demo`.
/// Commands that look up a few names pass [`HostLookups::Walk`]: the host table only
/// pays for its build time and memory in a service.
pub fn open_any(path: &Path, lookups: HostLookups) -> anyhow::Result<Catalog> {
    if path.as_os_str() == "demo" && !path.exists() {
        return Catalog::demo().context("building the demo catalog");
    }
    let (catalog, report) = Catalog::load(path, lookups)
        .with_context(|| format!("loading catalog {}", path.display()))?;
    if let Some(report) = report {
        print_report(&path.display().to_string(), &report);
    }
    Ok(catalog)
}

fn lookup(catalog: &Path, json: bool, targets: &[String]) -> anyhow::Result<ExitCode> {
    let catalog = open_any(catalog, HostLookups::Walk)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for target in targets {
        let set = if target.contains('/') {
            catalog.lookup_url(target)
        } else {
            catalog.lookup_host(target)
        };
        let names: Vec<&str> = catalog.names_of(set).collect();
        if json {
            let line = serde_json::json!({ "target": target, "categories": names });
            writeln!(out, "{line}")?;
        } else if names.is_empty() {
            writeln!(out, "{target}\t-")?;
        } else {
            writeln!(out, "{target}\t{}", names.join(","))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn stats(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let catalog = Catalog::open(path)?;
    let s = catalog.stats();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if json {
        let cats: Vec<_> = s
            .per_category
            .iter()
            .map(|c| {
                serde_json::json!({
                    "id": c.id, "name": c.name, "usage": c.usage.as_str(),
                    "domains": c.domains, "urls": c.urls, "expressions": c.expressions,
                    "aliases": c.aliases,
                })
            })
            .collect();
        let v = serde_json::json!({
            "path": path.display().to_string(),
            "format_version": hallpass_catalog::FORMAT_VERSION,
            "bytes": s.bytes, "categories": s.categories, "aliases": s.aliases,
            "host_entries": s.host_keys, "url_entries": s.url_keys,
            "expressions": s.expressions, "category_sets": s.category_sets,
            "lookup_table_bytes": s.lookup_table_bytes,
            "per_category": cats,
        });
        writeln!(out, "{v}")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let per_entry = if s.host_keys + s.url_keys > 0 {
        s.bytes as f64 / (s.host_keys + s.url_keys) as f64
    } else {
        0.0
    };
    writeln!(out, "index:          {}", path.display())?;
    writeln!(out, "format version: {}", hallpass_catalog::FORMAT_VERSION)?;
    writeln!(
        out,
        "bytes:          {} ({per_entry:.1} per entry)",
        s.bytes
    )?;
    if s.lookup_table_bytes > 0 {
        writeln!(
            out,
            "lookup table:   {} bytes in memory ({:.1} per host entry)",
            s.lookup_table_bytes,
            s.lookup_table_bytes as f64 / s.host_keys.max(1) as f64
        )?;
    } else {
        writeln!(out, "lookup table:   none (host lookups walk the index)")?;
    }
    writeln!(out, "categories:     {}", s.categories)?;
    writeln!(out, "aliases:        {}", s.aliases)?;
    writeln!(out, "host entries:   {}", s.host_keys)?;
    writeln!(out, "url entries:    {}", s.url_keys)?;
    writeln!(out, "expressions:    {}", s.expressions)?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<4} {:<28} {:<7} {:>10} {:>8} {:>6}  aliases",
        "id", "category", "usage", "domains", "urls", "exprs"
    )?;
    for c in &s.per_category {
        writeln!(
            out,
            "{:<4} {:<28} {:<7} {:>10} {:>8} {:>6}  {}",
            c.id,
            c.name,
            c.usage.as_str(),
            c.domains,
            c.urls,
            c.expressions,
            c.aliases.join(",")
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Removes a temporary file when dropped (unless it was consumed).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct CountingWriter<W> {
    inner: W,
    bar: ProgressBar,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn fetch(url: &str, output: &Path, timeout: Duration) -> anyhow::Result<ExitCode> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("{url}: only http:// and https:// addresses can be fetched");
    }
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let nonce = hallpass_clock::Clock::system()
        .wall()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tmp = TempFile(dir.join(format!(
        ".hallpass-fetch-{}-{nonce}.tar.gz",
        std::process::id()
    )));

    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(30))
        .user_agent(concat!("hallpass/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("setting up the HTTP client")?;
    let response = client
        .get(url)
        .send()
        .with_context(|| format!("downloading {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("downloading {url}: server answered {status}");
    }
    let mut response = response;
    let expected_len = response.content_length();
    let bar = byte_bar(expected_len.unwrap_or(0), "downloading");
    {
        let file = File::create(&tmp.0).with_context(|| format!("creating {}", tmp.0.display()))?;
        let mut writer = CountingWriter {
            inner: BufWriter::new(file),
            bar: bar.clone(),
        };
        let copied = response.copy_to(&mut writer);
        bar.finish_and_clear();
        copied.with_context(|| format!("downloading {url}"))?;
        writer
            .flush()
            .with_context(|| format!("writing {}", tmp.0.display()))?;
        if let Some(expected) = expected_len {
            let got = std::fs::metadata(&tmp.0).map(|m| m.len()).unwrap_or(0);
            if got != expected {
                bail!("downloading {url}: got {got} of {expected} bytes");
            }
        }
    }

    let mut builder = CatalogBuilder::new();
    let size = size_of(&tmp.0);
    let bar = byte_bar(size, "importing");
    let file = File::open(&tmp.0).with_context(|| format!("opening {}", tmp.0.display()))?;
    let report = builder.import_ut1_tarball(file, url, &mut |n| bar.inc(n));
    bar.finish_and_clear();
    let report = report.with_context(|| format!("importing {url}"))?;
    print_report(url, &report);
    let bar = spinner("compiling index");
    let bytes = builder.write_to(output);
    bar.finish_and_clear();
    let bytes = bytes.with_context(|| format!("writing {}", output.display()))?;
    tell!(
        "fetched {url}: {} entries, {} bad line(s); wrote {} ({bytes} bytes)",
        report.entries,
        report.bad_lines,
        output.display()
    );
    drop(tmp);
    Ok(ExitCode::SUCCESS)
}

fn diff(old: &Path, new: &Path) -> anyhow::Result<ExitCode> {
    let old_c = open_any(old, HostLookups::Walk)?;
    let new_c = open_any(new, HostLookups::Walk)?;
    let rows = Catalog::diff(&old_c, &new_c);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (mut added, mut removed) = (0u64, 0u64);
    writeln!(out, "{:<28} {:>10} {:>10}", "category", "added", "removed")?;
    for r in rows.iter().filter(|r| r.added > 0 || r.removed > 0) {
        writeln!(out, "{:<28} {:>10} {:>10}", r.name, r.added, r.removed)?;
        added += r.added;
        removed += r.removed;
    }
    writeln!(out, "{:<28} {:>10} {:>10}", "total", added, removed)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
