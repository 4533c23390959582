//! Importers: UT1 (tarball or extracted directory), hosts files, adblock-style lists
//! and plain domain lists. All report bad lines (file:line) and carry on.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::Usage;
use crate::builder::CatalogBuilder;
use crate::error::CatalogError;
use crate::parse::{
    ImportReport, Line, ListFormat, MAX_LIST_BYTES, detect_format, for_each_line, parse_line,
};

/// Called with the number of source bytes consumed since the last call.
pub type Progress<'a> = &'a mut dyn FnMut(u64);

/// What kind of source a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A UT1 `blacklists.tar.gz` (or any gzip'd tar of category folders).
    Ut1Tarball,
    /// An extracted UT1 `blacklists/` directory.
    Ut1Dir,
    /// One UT1 category folder (holding `domains`, `urls`, ...).
    Ut1Category,
    /// A single list file.
    List,
}

/// Decides what a path holds, from its name and (for directories) its content.
pub fn source_kind(path: &Path) -> Result<SourceKind, CatalogError> {
    let meta = std::fs::metadata(path).map_err(|e| CatalogError::io(path, e))?;
    if !meta.is_dir() && !meta.is_file() {
        return Err(CatalogError::NotAFile {
            path: path.to_path_buf(),
            kind: crate::error::file_kind(&meta),
            expected: "a list, a UT1 folder or tarball, or an index",
        });
    }
    if meta.is_file() && meta.len() > MAX_LIST_BYTES {
        return Err(CatalogError::ListTooLarge {
            source_name: path.display().to_string(),
            limit: MAX_LIST_BYTES,
        });
    }
    if meta.is_dir() {
        if ["domains", "urls", "expressions"]
            .iter()
            .any(|f| path.join(f).is_file())
        {
            return Ok(SourceKind::Ut1Category);
        }
        return Ok(SourceKind::Ut1Dir);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        return Ok(SourceKind::Ut1Tarball);
    }
    // A gzip file of another name: look at the magic number.
    let mut magic = [0u8; 2];
    if let Ok(mut f) = File::open(path)
        && f.read_exact(&mut magic).is_ok()
        && magic == [0x1f, 0x8b]
    {
        return Ok(SourceKind::Ut1Tarball);
    }
    Ok(SourceKind::List)
}

/// Reads a UT1 `usage` file: `black` or `white` (other lines are descriptions).
pub fn parse_usage(text: &str) -> Usage {
    for line in text.lines() {
        match line.trim().to_ascii_lowercase().as_str() {
            "black" => return Usage::Black,
            "white" => return Usage::White,
            _ => {}
        }
    }
    Usage::Unknown
}

struct CountingReader<'a, R> {
    inner: R,
    progress: Progress<'a>,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// The last normal component of a symlink target (`../adult` -> `adult`).
fn link_target_name(target: &Path) -> Option<String> {
    target
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .next_back()
        .map(str::to_string)
}

impl CatalogBuilder {
    /// Imports one list of names (plain, hosts or adblock) into `category`.
    /// `source` names the list in bad-line reports.
    pub fn import_list<R: BufRead>(
        &mut self,
        category: &str,
        source: &str,
        mut reader: R,
        format: ListFormat,
    ) -> Result<ImportReport, CatalogError> {
        let cat = self.category_index(category)?;
        let format = match format {
            ListFormat::Auto => {
                let sample = reader.fill_buf().map_err(|e| CatalogError::io(source, e))?;
                detect_format(sample)
            }
            f => f,
        };
        let mut report = ImportReport {
            files: 1,
            ..Default::default()
        };
        for_each_line(
            reader,
            source,
            &mut report,
            |n, line, report| match parse_line(format, line) {
                Line::Ignore => report.ignored += 1,
                Line::Bad(reason) => report.bad(source, n, reason, line),
                Line::Name(name) => match self.push_domain(cat, name) {
                    Ok(()) => report.entries += 1,
                    Err(reason) => report.bad(source, n, reason, line),
                },
                Line::Names(names) => {
                    for name in names {
                        match self.push_domain(cat, name) {
                            Ok(()) => report.entries += 1,
                            Err(reason) => report.bad(source, n, reason, line),
                        }
                    }
                }
            },
        )?;
        Ok(report)
    }

    /// Imports one file of a UT1 category folder, by its file name: `domains`,
    /// `urls`, `expressions` or `usage`. Other files are skipped (returns `None`).
    fn import_ut1_file<R: BufRead>(
        &mut self,
        category: &str,
        file_name: &str,
        source: &str,
        reader: R,
    ) -> Result<Option<ImportReport>, CatalogError> {
        let cat = self.category_index(category)?;
        let mut report = ImportReport {
            files: 1,
            ..Default::default()
        };
        let io = |e| CatalogError::io(source, e);
        match file_name {
            "domains" => {
                for_each_line(
                    reader,
                    source,
                    &mut report,
                    |n, line, report| match parse_line(ListFormat::Plain, line) {
                        Line::Ignore => report.ignored += 1,
                        Line::Bad(reason) => report.bad(source, n, reason, line),
                        Line::Name(name) => match self.push_domain(cat, name) {
                            Ok(()) => report.entries += 1,
                            Err(reason) => report.bad(source, n, reason, line),
                        },
                        Line::Names(_) => report.bad(source, n, "more than one name", line),
                    },
                )?;
            }
            "urls" => {
                for_each_line(reader, source, &mut report, |n, line, report| {
                    let body = line.trim();
                    if body.is_empty() || body.starts_with('#') {
                        report.ignored += 1;
                        return;
                    }
                    match self.push_url(cat, body) {
                        Ok(()) => report.entries += 1,
                        Err(reason) => report.bad(source, n, reason, line),
                    }
                })?;
            }
            "expressions" => {
                for_each_line(reader, source, &mut report, |n, line, report| {
                    let body = line.trim();
                    if body.is_empty() || body.starts_with('#') {
                        report.ignored += 1;
                        return;
                    }
                    match self.push_expression(cat, body) {
                        Ok(()) => report.entries += 1,
                        Err(reason) => report.bad(source, n, &reason, line),
                    }
                })?;
            }
            "usage" => {
                let mut text = String::new();
                let mut limited = reader.take(64 * 1024);
                let mut bytes = Vec::new();
                limited.read_to_end(&mut bytes).map_err(io)?;
                text.push_str(&String::from_utf8_lossy(&bytes));
                report.lines += text.lines().count() as u64;
                self.set_usage(category, parse_usage(&text))?;
            }
            _ => return Ok(None),
        }
        Ok(Some(report))
    }

    /// Imports a UT1 tarball (`blacklists.tar.gz`) from a reader: each
    /// `<category>/{domains,urls,expressions,usage}` entry, and symlink entries as
    /// aliases. A damaged archive fails the import.
    pub fn import_ut1_tarball<R: Read>(
        &mut self,
        reader: R,
        source: &str,
        progress: Progress<'_>,
    ) -> Result<ImportReport, CatalogError> {
        let counting = CountingReader {
            inner: reader,
            progress,
        };
        let gz = flate2::read::GzDecoder::new(BufReader::with_capacity(1 << 16, counting));
        let mut archive = tar::Archive::new(gz);
        let arch_err = |e: std::io::Error| CatalogError::Archive {
            source_name: source.to_string(),
            detail: e.to_string(),
        };
        let mut report = ImportReport::default();
        let mut categories = 0;
        for entry in archive.entries().map_err(arch_err)? {
            let entry = entry.map_err(arch_err)?;
            let path: PathBuf = entry.path().map_err(arch_err)?.into_owned();
            let comps: Vec<String> = path
                .components()
                .filter_map(|c| match c {
                    std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            let kind = entry.header().entry_type();
            if kind.is_symlink() {
                let Some(alias) = comps.last() else { continue };
                let target = entry
                    .link_name()
                    .map_err(arch_err)?
                    .and_then(|t| link_target_name(&t));
                match target {
                    Some(t) => self.add_alias(alias, &t)?,
                    None => report.bad(
                        &format!("{source}:{}", path.display()),
                        0,
                        "symlink without a target",
                        alias,
                    ),
                }
                continue;
            }
            if !kind.is_file() || comps.len() < 2 {
                continue;
            }
            let file_name = comps[comps.len() - 1].clone();
            let category = comps[comps.len() - 2].clone();
            if !matches!(
                file_name.as_str(),
                "domains" | "urls" | "expressions" | "usage"
            ) {
                continue;
            }
            let name = format!("{source}:{}", path.display());
            match self.import_ut1_file(&category, &file_name, &name, BufReader::new(entry)) {
                Ok(Some(r)) => {
                    categories += 1;
                    report.merge(r)
                }
                Ok(None) => {}
                Err(CatalogError::Io { error, .. }) => return Err(arch_err(error)),
                Err(CatalogError::InvalidCategoryName { name: n, reason }) => {
                    report.bad(&name, 0, reason, &n);
                }
                Err(e) => return Err(e),
            }
        }
        if categories == 0 {
            return Err(CatalogError::Archive {
                source_name: source.to_string(),
                detail: "no category lists (domains, urls, expressions) found".into(),
            });
        }
        Ok(report)
    }

    /// Imports one UT1 category folder under `category`.
    pub fn import_ut1_category(
        &mut self,
        dir: &Path,
        category: &str,
        progress: Progress<'_>,
    ) -> Result<ImportReport, CatalogError> {
        let mut report = ImportReport::default();
        self.add_category(category)?;
        for file in ["usage", "domains", "urls", "expressions"] {
            let path = dir.join(file);
            let Ok(f) = File::open(&path) else { continue };
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            let name = path.display().to_string();
            if let Some(r) = self.import_ut1_file(category, file, &name, BufReader::new(f))? {
                report.merge(r);
            }
            progress(size);
        }
        Ok(report)
    }

    /// Imports an extracted UT1 `blacklists/` directory: every category folder, and
    /// symlinked folders as aliases.
    pub fn import_ut1_dir(
        &mut self,
        dir: &Path,
        progress: Progress<'_>,
    ) -> Result<ImportReport, CatalogError> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| CatalogError::io(dir, e))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        let mut report = ImportReport::default();
        let mut categories = 0;
        for entry in entries {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let meta = std::fs::symlink_metadata(&path).map_err(|e| CatalogError::io(&path, e))?;
            if meta.file_type().is_symlink() {
                if path.is_dir()
                    && let Ok(target) = std::fs::read_link(&path)
                    && let Some(t) = link_target_name(&target)
                {
                    self.add_alias(&name, &t)?;
                }
                continue;
            }
            // A folder without any list is not a category (`catalog import /etc`).
            let has_list = ["domains", "urls", "expressions"]
                .iter()
                .any(|f| path.join(f).is_file());
            if !meta.is_dir() || !has_list {
                continue;
            }
            match self.import_ut1_category(&path, &name, progress) {
                Ok(r) => {
                    categories += 1;
                    report.merge(r);
                }
                Err(CatalogError::InvalidCategoryName { name, reason }) => {
                    report.bad(&path.display().to_string(), 0, reason, &name)
                }
                Err(e) => return Err(e),
            }
        }
        if categories == 0 {
            return Err(CatalogError::UnknownSource {
                path: dir.to_path_buf(),
                detail: "no category folders (holding domains, urls or expressions) found".into(),
            });
        }
        Ok(report)
    }

    /// Imports any supported source, deciding its kind from the path and content:
    /// `.tar.gz`/`.tgz` -> UT1 tarball; a directory -> UT1 (a folder holding `domains`
    /// is one category, named by `category` or the folder); a file -> a list in
    /// `format` (or detected) under `category` (required, except for UT1's own
    /// `domains`/`urls`/`expressions` files, which take their folder's name).
    pub fn import_path(
        &mut self,
        path: &Path,
        category: Option<&str>,
        format: ListFormat,
        progress: Progress<'_>,
    ) -> Result<ImportReport, CatalogError> {
        let source = path.display().to_string();
        match source_kind(path)? {
            SourceKind::Ut1Tarball => {
                let f = File::open(path).map_err(|e| CatalogError::io(path, e))?;
                self.import_ut1_tarball(f, &source, progress)
            }
            SourceKind::Ut1Dir => self.import_ut1_dir(path, progress),
            SourceKind::Ut1Category => {
                let name = match category {
                    Some(c) => c.to_string(),
                    None => path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                };
                self.import_ut1_category(path, &name, progress)
            }
            SourceKind::List => {
                // Before asking for a category: an index needs none, it is no list.
                if is_index_file(path) {
                    return Err(CatalogError::NotAList {
                        source_name: source,
                        detail: crate::parse::INDEX_IS_NOT_A_LIST.into(),
                    });
                }
                let file_name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let parent = path
                    .parent()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned());
                let f = File::open(path).map_err(|e| CatalogError::io(path, e))?;
                let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                let reader = BufReader::with_capacity(1 << 16, f);
                let is_ut1_file = matches!(file_name.as_str(), "urls" | "expressions" | "usage")
                    || (file_name == "domains" && format == ListFormat::Auto);
                let report = match (category, parent) {
                    (None, Some(parent)) if is_ut1_file => self
                        .import_ut1_file(&parent, &file_name, &source, reader)?
                        .unwrap_or_default(),
                    (Some(cat), _) if is_ut1_file && file_name != "domains" => self
                        .import_ut1_file(cat, &file_name, &source, reader)?
                        .unwrap_or_default(),
                    (Some(cat), _) => self.import_list(cat, &source, reader, format)?,
                    (None, _) => {
                        return Err(CatalogError::UnknownSource {
                            path: path.to_path_buf(),
                            detail: "a list file needs a category name (--category NAME)".into(),
                        });
                    }
                };
                progress(size);
                Ok(report)
            }
        }
    }
}

/// Whether the file at `path` starts with the index magic number.
pub fn is_index_file(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == crate::index::MAGIC
}

impl crate::Catalog {
    /// Opens an index file; or, for a UT1 tarball or directory (or any source
    /// [`CatalogBuilder::import_path`] takes without a category), imports it in memory
    /// and returns the import report too. `lookups` as in [`crate::Catalog::open_with`].
    pub fn load(
        path: &Path,
        lookups: crate::HostLookups,
    ) -> Result<(crate::Catalog, Option<ImportReport>), CatalogError> {
        if path.is_file() && (is_index_file(path) || source_kind(path)? == SourceKind::List) {
            return crate::Catalog::open_with(path, lookups).map(|c| (c, None));
        }
        let mut b = CatalogBuilder::new();
        let report = b.import_path(path, None, ListFormat::Auto, &mut |_| {})?;
        let catalog = crate::Catalog::from_bytes_with(b.to_bytes()?, lookups)?;
        Ok((catalog, Some(report)))
    }
}
