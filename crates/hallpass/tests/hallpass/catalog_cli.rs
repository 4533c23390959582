//! `hallpass catalog ...` through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Where the real UT1 tarball is: `../shared/data/ut1/blacklists.tar.gz` beside the
/// repository (as CI lays it out), or `HALLPASS_UT1_TARBALL` (a git worktree elsewhere).
fn ut1_tarball() -> PathBuf {
    match std::env::var_os("HALLPASS_UT1_TARBALL") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/ut1/blacklists.tar.gz")
        }
    }
}

/// Whether this is a CI run (`CI` set, as CI services and `.ci/run` do).
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn hallpass(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(args)
        .env("HALLPASS_LOG", "warn")
        .output()
        .expect("run hallpass")
}

fn ok(args: &[&str]) -> (String, String) {
    let out = hallpass(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn help_for_every_command() {
    for cmd in ["import", "lookup", "stats", "fetch", "diff"] {
        let (out, _) = ok(&["catalog", cmd, "--help"]);
        assert!(out.contains("Example:"), "{cmd}: {out}");
    }
}

#[test]
fn import_lists_lookup_stats_diff() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("ads.hosts");
    std::fs::write(
        &hosts,
        "# ads\n127.0.0.1 localhost\n0.0.0.0 ads.example tracker.example\nnot a hosts line\n",
    )
    .unwrap();
    let abp = dir.path().join("games.txt");
    std::fs::write(
        &abp,
        "[Adblock Plus 2.0]\n||games.example^\n||Bücher.example^\n",
    )
    .unwrap();
    let plain = dir.path().join("school.txt");
    std::fs::write(&plain, "blocked.example\nbad..name\n").unwrap();
    let idx = dir.path().join("catalog.idx");

    let (_, err) = ok(&[
        "catalog",
        "import",
        p(&hosts),
        "--category",
        "ads",
        "--output",
        p(&idx),
    ]);
    assert!(err.contains(&format!("{}:4:", hosts.display())), "{err}");
    let out = hallpass(&["catalog", "import", p(&abp), "--output", p(&idx)]);
    assert!(
        !out.status.success(),
        "a list without --category is refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--category"));

    let idx2 = dir.path().join("catalog2.idx");
    ok(&[
        "catalog",
        "import",
        p(&hosts),
        "--category",
        "ads",
        "--output",
        p(&idx2),
    ]);
    ok(&[
        "catalog",
        "import",
        p(&abp),
        "--category",
        "games",
        "--format",
        "adblock",
        "--output",
        p(&idx2),
    ]);
    let (_, err) = ok(&[
        "catalog",
        "import",
        p(&plain),
        "--category",
        "school",
        "--output",
        p(&idx2),
    ]);
    assert!(err.contains(&format!("{}:2:", plain.display())), "{err}");

    let (out, _) = ok(&[
        "catalog",
        "lookup",
        "--catalog",
        p(&idx),
        "www.ads.example",
        "x.tracker.example",
        "nothing.example",
        "http://ads.example/x",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "www.ads.example\tads",
            "x.tracker.example\tads",
            "nothing.example\t-",
            "http://ads.example/x\tads"
        ]
    );

    let (out, _) = ok(&[
        "catalog",
        "lookup",
        "--json",
        "--catalog",
        p(&idx),
        "ads.example",
        "none.example",
    ]);
    let objs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        objs[0],
        serde_json::json!({"target": "ads.example", "categories": ["ads"]})
    );
    assert_eq!(
        objs[1],
        serde_json::json!({"target": "none.example", "categories": []})
    );

    let (out, _) = ok(&["catalog", "stats", p(&idx)]);
    assert!(out.contains("categories:     1"), "{out}");
    assert!(out.contains("host entries:   2"), "{out}");
    assert!(
        out.contains("lookup table:   ") && out.contains("bytes in memory"),
        "{out}"
    );
    let (out, _) = ok(&["catalog", "stats", "--json", p(&idx)]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["host_entries"], 2);
    assert!(v["lookup_table_bytes"].as_u64().unwrap() > 0, "{v}");

    // Several sources in one import, and diff against the first index.
    let idx3 = dir.path().join("catalog3.idx");
    ok(&[
        "catalog",
        "import",
        p(&hosts),
        p(&plain),
        "--category",
        "ads",
        "--output",
        p(&idx3),
    ]);
    let (out, _) = ok(&["catalog", "diff", p(&idx), p(&idx3)]);
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["ads", "1", "0"]),
        "{out}"
    );

    // Damaged index files are refused with a clear error.
    let mut bytes = std::fs::read(&idx).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    let bad = dir.path().join("bad.idx");
    std::fs::write(&bad, &bytes).unwrap();
    let out = hallpass(&["catalog", "stats", p(&bad)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
    std::fs::write(&bad, &bytes[..n / 2]).unwrap();
    let out = hallpass(&["catalog", "lookup", "--catalog", p(&bad), "x.example"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));

    // The demo catalog.
    let (out, _) = ok(&[
        "catalog",
        "lookup",
        "--catalog",
        "demo",
        "mail.google.com",
        "discord.com",
    ]);
    assert_eq!(out, "mail.google.com\twebmail\ndiscord.com\tchat\n");
}

/// Serves `routes` on 127.0.0.1 for `requests` connections; returns the base URL.
fn serve(body: Vec<u8>, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
            let _ = match path.as_str() {
                "/blacklists.tar.gz" => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    stream
                        .write_all(head.as_bytes())
                        .and_then(|_| stream.write_all(&body))
                }
                "/truncated.tar.gz" => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    stream
                        .write_all(head.as_bytes())
                        .and_then(|_| stream.write_all(&body[..body.len() / 3]))
                }
                "/garbage.tar.gz" => {
                    let junk = b"this is not a tarball\n".repeat(100);
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        junk.len()
                    );
                    stream
                        .write_all(head.as_bytes())
                        .and_then(|_| stream.write_all(&junk))
                }
                _ => stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
            let _ = stream.flush();
        }
    });
    format!("http://{addr}")
}

/// A small tarball in UT1's layout (`blacklists/CATEGORY/domains`, `usage`), made with
/// the system `tar`: what `catalog fetch` downloads, without the real lists.
fn small_ut1_tarball(dir: &Path) -> Vec<u8> {
    let root = dir.join("src/blacklists");
    for (category, domains, usage) in [
        ("webmail", "gmail.com\nmail.example\n", None),
        ("social_networks", "facebook.com\n", None),
        ("gambling", "casino.example\n", Some("black\n")),
    ] {
        std::fs::create_dir_all(root.join(category)).unwrap();
        std::fs::write(root.join(category).join("domains"), domains).unwrap();
        if let Some(usage) = usage {
            std::fs::write(root.join(category).join("usage"), usage).unwrap();
        }
    }
    let tarball = dir.join("small.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir.join("src"))
        .arg("blacklists")
        .status()
        .unwrap();
    assert!(status.success());
    let body = std::fs::read(&tarball).unwrap();
    std::fs::remove_dir_all(dir.join("src")).unwrap();
    std::fs::remove_file(&tarball).unwrap();
    body
}

/// `catalog fetch` of `body` (a UT1-layout tarball) into an empty folder, then every
/// failed fetch (404, truncated, not a tarball, no server) leaving that index exactly as
/// it was and nothing else in the folder; stats and diff read the fetched index.
fn fetch_then_failed_fetches_leave_the_index_untouched(body: Vec<u8>) {
    let base = serve(body, 4);
    let dir = tempfile::tempdir().unwrap();
    let idx: PathBuf = dir.path().join("ut1.idx");

    let (_, err) = ok(&[
        "catalog",
        "fetch",
        &format!("{base}/blacklists.tar.gz"),
        "--output",
        p(&idx),
    ]);
    assert!(err.contains("fetched"), "{err}");
    let (out, _) = ok(&[
        "catalog",
        "lookup",
        "--catalog",
        p(&idx),
        "gmail.com",
        "www.facebook.com",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("gmail.com\t") && lines[0].contains("webmail"),
        "{out}"
    );
    assert!(lines[1].contains("social_networks"), "{out}");
    let good = std::fs::read(&idx).unwrap();

    for path in ["/missing.tar.gz", "/truncated.tar.gz", "/garbage.tar.gz"] {
        let out = hallpass(&[
            "catalog",
            "fetch",
            &format!("{base}{path}"),
            "--output",
            p(&idx),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{path} should fail");
        assert!(err.contains("not changed"), "{path}: {err}");
        assert_eq!(
            std::fs::read(&idx).unwrap(),
            good,
            "{path} changed the index"
        );
    }
    // Nothing but the index is left in the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // A server that is not there at all.
    let out = hallpass(&[
        "catalog",
        "fetch",
        "http://127.0.0.1:9/blacklists.tar.gz",
        "--output",
        p(&idx),
    ]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&idx).unwrap(), good);

    // stats and diff on the fetched index.
    let (out, _) = ok(&["catalog", "stats", p(&idx)]);
    assert!(out.contains("webmail"), "{out}");
    let (out, _) = ok(&["catalog", "diff", p(&idx), p(&idx)]);
    assert!(
        out.lines()
            .last()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            == ["total", "0", "0"],
        "{out}"
    );
}

/// The fetch's atomicity needs no real lists: it runs everywhere, always.
#[test]
fn failed_fetches_leave_the_index_untouched() {
    let dir = tempfile::tempdir().unwrap();
    fetch_then_failed_fetches_leave_the_index_untouched(small_ut1_tarball(dir.path()));
}

/// The same with the real UT1 tarball: skipped when it is missing, except under CI.
#[test]
fn fetch_real_ut1_tarball() {
    let tarball = ut1_tarball();
    if !tarball.exists() {
        assert!(
            !under_ci(),
            "{} not found: CI must run the UT1 tests (put the lists at ../shared/data/ut1 \
             beside the repository, or set HALLPASS_UT1_TARBALL)",
            tarball.display()
        );
        eprintln!(
            "skipping: {} not found (and not under CI)",
            tarball.display()
        );
        return;
    }
    fetch_then_failed_fetches_leave_the_index_untouched(std::fs::read(&tarball).unwrap());
}

/// A pipe whose reading end is already closed: every write to it fails with EPIPE.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn import_refuses_folders_and_files_that_hold_no_lists() {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("out.idx");
    // A folder like /etc: files and folders, none of them a category list.
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(etc.join("ssh")).unwrap();
    std::fs::write(etc.join("ssh/ssh_config"), "Host *\n").unwrap();
    std::fs::write(etc.join("hosts"), "127.0.0.1 localhost\n").unwrap();
    for folder in [etc.as_path(), Path::new("/etc")] {
        let out = hallpass(&["catalog", "import", p(folder), "--output", p(&idx)]);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", folder.display());
        assert!(
            err.contains(&format!("{}: ", folder.display())) && err.contains("no category folders"),
            "{err}"
        );
        assert!(
            !idx.exists(),
            "an index was written for {}",
            folder.display()
        );
    }

    // A compiled index given as a list: refused, not read as 77 junk entries.
    let list = dir.path().join("ads.txt");
    std::fs::write(&list, "ads.example\ntracker.example\n").unwrap();
    let hpidx = dir.path().join("catalog.hpidx");
    ok(&[
        "catalog",
        "import",
        p(&list),
        "--category",
        "ads",
        "--output",
        p(&hpidx),
    ]);
    for category in [Some("ads"), None] {
        let mut args = vec!["catalog", "import", p(&hpidx), "--output", p(&idx)];
        if let Some(c) = category {
            args.extend(["--category", c]);
        }
        let out = hallpass(&args);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "{}: this is a Hallpass catalog index, not a list",
                hpidx.display()
            )),
            "{err}"
        );
        assert!(!idx.exists(), "{args:?} wrote an index");
    }

    // stats on a folder says it is one (it used to say "No such device").
    let out = hallpass(&["catalog", "stats", p(dir.path())]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "error: {} is a directory, not a catalog index",
            dir.path().display()
        )
    );
}

#[test]
fn closed_stdout_or_stderr_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    // A list with a bad line: import warns on stderr, then says what it wrote.
    let list = dir.path().join("ads.txt");
    std::fs::write(&list, "ads.example\nbad..name\ntracker.example\n").unwrap();
    let idx = dir.path().join("catalog.idx");
    let import = |stderr: Stdio| {
        Command::new(env!("CARGO_BIN_EXE_hallpass"))
            .args([
                "catalog",
                "import",
                p(&list),
                "--category",
                "ads",
                "--output",
                p(&idx),
            ])
            .env("HALLPASS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .status()
            .unwrap()
    };
    // `catalog import ... 2>&1 | head -0`: the warnings and the summary go nowhere,
    // and the import still succeeds.
    assert_eq!(import(closed_pipe().into()).code(), Some(0));
    assert!(idx.exists());
    std::fs::remove_file(&idx).unwrap();
    // Spawned with stderr piped, the pipe dropped before it writes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args([
            "catalog",
            "import",
            p(&list),
            "--category",
            "ads",
            "--output",
            p(&idx),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(idx.exists());

    // lookup with a UT1 folder as --catalog reports the folder's bad lines on stderr.
    let ut1 = dir.path().join("blacklists");
    std::fs::create_dir_all(ut1.join("ads")).unwrap();
    std::fs::write(ut1.join("ads/domains"), "ads.example\nbad..name\n").unwrap();
    let lookup = |catalog: &Path, stdout: Stdio, stderr: Stdio| {
        Command::new(env!("CARGO_BIN_EXE_hallpass"))
            .args([
                "catalog",
                "lookup",
                "--catalog",
                p(catalog),
                "www.ads.example",
                "none.example",
            ])
            .env("HALLPASS_LOG", "warn")
            .stdout(stdout)
            .stderr(stderr)
            .output()
            .unwrap()
    };
    let out = lookup(&ut1, Stdio::piped(), Stdio::piped());
    assert!(stderr_of(&out).contains("bad line"), "{}", stderr_of(&out));
    // Closed stderr: the results still reach stdout in full.
    for catalog in [ut1.as_path(), idx.as_path()] {
        let out = lookup(catalog, Stdio::piped(), closed_pipe().into());
        assert_eq!(out.status.code(), Some(0), "{}", catalog.display());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "www.ads.example\tads\nnone.example\t-\n"
        );
        // Closed stdout: stops quietly with 141, nothing said about it.
        let out = lookup(catalog, closed_pipe().into(), Stdio::piped());
        assert_eq!(out.status.code(), Some(141), "{}", stderr_of(&out));
        assert!(!stderr_of(&out).contains("panicked"), "{}", stderr_of(&out));
        // Both closed.
        let pipe = closed_pipe();
        let out = lookup(catalog, pipe.try_clone().unwrap().into(), pipe.into());
        assert_eq!(out.status.code(), Some(141), "{}", catalog.display());
    }
    // stats and diff on a closed stdout, an error on a closed stderr.
    for args in [
        vec!["catalog", "stats", p(&idx)],
        vec!["catalog", "diff", p(&idx), p(&idx)],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hallpass"))
            .args(&args)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(141),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(["catalog", "stats", p(dir.path())])
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
