//! `hallpass detect`: which safeguarding risk phrases a text contains, by theme and
//! severity, with the built-in lists or a school's own (`--lists DIR`).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use hallpass_detect::{ListError, Lists, Matcher, Phrase, Scratch};

/// Check texts (search terms, messages) against the safeguarding risk-phrase lists.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "For each text, prints the themes (self-harm, extremism, bullying, \
sexual-exploitation, drugs, weapons, hate, adult), severities (1 worth knowing .. 5 act now) \
and the phrases that matched, with the list file and line each came from. Matching ignores \
case, accents, leetspeak (k1ll), look-alike letters, spaced-out letters (s u i c i d e) and \
repeated letters (kiiill), and only matches whole words: \"Scunthorpe\" or \"therapist\" \
match nothing.\n\n\
The built-in lists cover English, Polish, Romanian and Spanish. --lists DIR reads every \
*.txt file there (one line per phrase: THEME SEVERITY PHRASE, # for comments): a file named \
like a built-in one (en.txt) replaces it, any other name adds to them. A file with a mistake \
is refused, naming FILE:LINE and what is wrong (exit 2). The format: crates/detect/lists/README.md.\n\n\
With no TEXT, or TEXT `-`, texts are read from standard input, one per line.\n\n\
Exit status: 0 when the texts were checked (whether or not anything matched), 2 on an error.\n\n\
Examples:\n  \
hallpass detect 'how to k1ll mys3lf' 'Scunthorpe United'\n  \
hallpass detect --json 'where to buy weed'\n  \
hallpass detect --lists /etc/hallpass/detect - < search-terms.txt"
)]
pub struct DetectArgs {
    /// Directory of the school's own list files (*.txt), added to or replacing the
    /// built-in ones by file name.
    #[arg(long, value_name = "DIR")]
    lists: Option<PathBuf>,
    /// One JSON object per text and line: {"text", "matches": [{"theme", "severity", "phrase"}]}.
    #[arg(long)]
    json: bool,
    /// Texts to check; `-` or none reads one text per line from standard input.
    #[arg(value_name = "TEXT")]
    texts: Vec<String>,
}

pub fn run(args: DetectArgs) -> anyhow::Result<ExitCode> {
    let mut lists = Lists::builtin().context("a built-in phrase list")?;
    if let Some(dir) = &args.lists {
        add_dir(&mut lists, dir)?;
    }
    let matcher = lists.matcher().context("compiling the phrase lists")?;
    let mut scratch = Scratch::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let from_stdin = args.texts.is_empty() || args.texts.iter().any(|t| t == "-");
    for text in &args.texts {
        if text != "-" {
            report(&mut out, &matcher, &mut scratch, text, args.json)?;
        }
    }
    if from_stdin {
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading texts from standard input")?;
            report(&mut out, &matcher, &mut scratch, &line, args.json)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Adds every `*.txt` file of `dir`, in name order (so which file wins is predictable).
pub fn add_dir(lists: &mut Lists, dir: &Path) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("reading list directory {}", dir.display()))?
    {
        let path = entry
            .with_context(|| format!("reading list directory {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "txt") && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        anyhow::bail!("{}: no *.txt list files in this directory", dir.display());
    }
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading list file {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        lists.add(&name, &text).map_err(|e| ListError {
            // The error names the path given, so the person can open it.
            file: path.display().to_string(),
            ..e
        })?;
    }
    Ok(())
}

fn report(
    out: &mut impl Write,
    matcher: &Matcher,
    scratch: &mut Scratch,
    text: &str,
    json: bool,
) -> anyhow::Result<()> {
    let mut found: Vec<&Phrase> = matcher.find(text, scratch).collect();
    // Most severe first; a phrase written twice in the text is reported once.
    found.sort_by(|a, b| {
        b.severity.cmp(&a.severity).then_with(|| {
            (a.theme, &a.phrase, &a.list, a.line).cmp(&(b.theme, &b.phrase, &b.list, b.line))
        })
    });
    found.dedup_by(|a, b| std::ptr::eq(*a, *b));
    if json {
        let line = JsonLine {
            text,
            matches: found
                .iter()
                .map(|p| JsonMatch {
                    theme: p.theme.name(),
                    severity: p.severity,
                    phrase: &p.phrase,
                })
                .collect(),
        };
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{text}")?;
    if found.is_empty() {
        writeln!(out, "  no risk phrases")?;
    }
    for p in found {
        let theme = match p.theme.description() {
            same if same == p.theme.name() => same.to_owned(),
            description => format!("{} ({description})", p.theme.name()),
        };
        writeln!(
            out,
            "  {theme}, severity {}: \"{}\" ({}:{})",
            p.severity, p.phrase, p.list, p.line
        )?;
    }
    Ok(())
}

/// One line of `--json` output, fields in this order.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    text: &'a str,
    matches: Vec<JsonMatch<'a>>,
}

#[derive(serde::Serialize)]
struct JsonMatch<'a> {
    theme: &'static str,
    severity: u8,
    phrase: &'a str,
}
