//! Time in filter for the decision after DATA (parse, detectors, rules), without SMTP:
//! the fixture messages and two large ones (a 5 MB PDF attachment, a ZIP of a 2 MB class
//! list), each checked repeatedly against the WCS policy.
//!
//! `cargo run --release -p hallpass-mail --example check_speed`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement: fail loudly

use std::time::Duration;

use hallpass_clock::Clock;
use hallpass_policy::{CategoryVocab, GroupSet, PolicyDoc};

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for (i, c) in data.chunks(3).enumerate() {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(T[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
        if i % 19 == 18 {
            out.push_str("\r\n");
        }
    }
    out
}

fn with_attachment(name: &str, mime: &str, data: &[u8]) -> Vec<u8> {
    format!(
        "From: teacher@wcs.london\r\nTo: parent@gmail.com\r\nSubject: Report\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         Please find it attached.\r\n--b\r\nContent-Type: {mime}; name=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\n\
         {}\r\n--b--\r\n",
        base64(data)
    )
    .into_bytes()
}

fn main() {
    let policy = PolicyDoc::parse(
        "wcs.toml",
        include_str!("../../../examples/policies/wcs.toml"),
    )
    .unwrap()
    .compile(&CategoryVocab::open())
    .unwrap()
    .0;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut messages: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(p).unwrap())
        })
        .collect();
    messages.sort();
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.resize(5 << 20, b'x');
    messages.push((
        "5MB-pdf".into(),
        with_attachment("report.pdf", "application/pdf", &pdf),
    ));
    let mut csv = String::from("Name,Date of birth,Form\n");
    let mut i = 0;
    let first = [
        "Amira", "Ben", "Chloe", "Dylan", "Ella", "Farid", "Grace", "Harry",
    ];
    let last = [
        "Smith", "Jones", "Patel", "Khan", "Brown", "Taylor", "Wilson",
    ];
    while csv.len() < 2 << 20 {
        let name = format!("{} {}", first[i % 8], last[i % 7]);
        csv.push_str(&format!("{name},{:02}/03/2013,8A\n", i % 28 + 1));
        i += 1;
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("list.csv", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, csv.as_bytes()).unwrap();
    let zip = zip.finish().unwrap().into_inner();
    messages.push((
        "2MB-csv-in-zip".into(),
        with_attachment("list.zip", "application/zip", &zip),
    ));

    let clock = Clock::system();
    let now = clock.now();
    println!(
        "{:<28} {:>10} {:>12} {:>10}",
        "message", "bytes", "per message", "verdict"
    );
    for (name, bytes) in &messages {
        let runs = if bytes.len() > 1 << 20 { 20 } else { 2000 };
        // The envelope from the headers, as `hallpass mail check` assumes.
        let from = hallpass_mail::header_addresses(bytes, &["From"]).remove(0);
        let to = hallpass_mail::header_addresses(bytes, &["To", "Cc"]);
        let start = clock.instant();
        let mut verdict = "";
        for _ in 0..runs {
            let c = hallpass_mail::check(&policy, &from, &to, GroupSet::EMPTY, bytes, now);
            verdict = c.decision.action.as_str();
        }
        let per = start.elapsed() / runs;
        println!(
            "{name:<28} {:>10} {:>12} {verdict:>10}",
            bytes.len(),
            fmt(per)
        );
    }
}

fn fmt(d: Duration) -> String {
    if d.as_millis() >= 10 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} µs", d.as_micros())
    }
}
