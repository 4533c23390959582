//! `hallpass catalog ...` through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TARBALL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/ut1/blacklists.tar.gz"
);

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

#[test]
fn fetch_real_tarball_and_failed_fetches_leave_index_untouched() {
    if !Path::new(TARBALL).exists() {
        eprintln!("skipping: {TARBALL} not found");
        return;
    }
    let body = std::fs::read(TARBALL).unwrap();
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

    // stats and diff on the real index.
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
