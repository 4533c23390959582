//! The email filter over real sockets: the real `swaks` sends through `serve`'s mail
//! relay to a real SMTP sink, `python3 -m aiosmtpd` with its Maildir handler (Debian
//! `python3-aiosmtpd`), which records what arrived. Rejections cite the clause inside
//! the SMTP session; a sink that is down gives 451 and the retry is delivered once;
//! every message is a `mail` event naming the sender's person.

mod console;
mod filter;
mod milter;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hallpass::testkit::tools::SmtpSink;
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_web::Role;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const WCS: &str = include_str!("../../../../../../examples/policies/wcs.toml");
const ROSTER: &str = "username,display_name,role,year_group,form,email,mis_id,groups\n\
t.teacher,Tess Teacher,teacher,,,teacher@wcs.london,T1,\n\
i.ict,Ivy Ict,staff,,,ict@wcs.london,I1,\n\
s.student,Sam Student,student,9,9B,sam.student@wcs.london,S1,\n\
h.head,Hal Head,staff,,,head@wcs.london,H1,\n";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../mail/tests/fixtures/{name}"))
}

/// Whether swaks and aiosmtpd are installed; under CI their absence fails the test.
fn have_tools() -> bool {
    let suite = "the mail relay tests";
    hallpass::testkit::tools::require("swaks", &["--version"], "swaks", suite)
        && SmtpSink::available(suite)
}

/// A loopback port nobody listens on (for the sink to take later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// aiosmtpd writing every message it accepts to a Maildir (the test kit's sink).
fn sink(port: u16, dir: &Path) -> SmtpSink {
    SmtpSink::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        &dir.join("maildir"),
    )
    .unwrap()
}

/// Runs swaks against the relay; its whole transcript (the server's replies included).
async fn swaks(relay: SocketAddr, args: &[&str]) -> String {
    let mut command = Command::new("swaks");
    command
        .args(["--server", "127.0.0.1", "--port"])
        .arg(relay.port().to_string())
        .args(["--helo", "mta.wcs.london", "--timeout", "30"])
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("swaks {args:?}:\n{transcript}");
    transcript
}

/// The server's reply to the message (the line after the lone dot).
fn data_reply(transcript: &str) -> &str {
    let mut lines = transcript.lines().skip_while(|l| l.trim() != "-> .");
    lines.nth(1).map_or("", str::trim)
}

async fn start(next_hop: SocketAddr) -> TestServer {
    TestServer::start(TestOptions {
        policy: Some(WCS.to_string()),
        roster: Some(ROSTER.to_string()),
        mail_next_hop: Some(next_hop),
        accounts: vec![
            ("t.teacher".into(), Role::Teacher, vec![]),
            ("i.ict".into(), Role::NetworkManager, vec![]),
            ("h.head".into(), Role::Headteacher, vec![]),
        ],
        ..TestOptions::default()
    })
    .await
    .unwrap()
}

/// `kind|person|verdict|rule|clause` of every mail event, oldest first.
async fn mail_events(server: &TestServer) -> Vec<String> {
    server.shared.writer.flush().await;
    hallpass_store::testing::query_strings(
        &server.store,
        "SELECT coalesce(person, '-') || '|' || verdict || '|' || coalesce(rule, '-') || '|' \
         || coalesce(clause, '-') || '|' || coalesce(detail, '') FROM events WHERE kind = 'mail' \
         ORDER BY at_us, event_id",
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_delivers_and_rejects_citing_clauses() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = sink(port, dir.path());
    let server = start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let relay = server.addrs("mail")[0];
    assert!(relay.ip().is_loopback());

    // A normal message goes through, and only after the sink took it.
    let t = swaks(
        relay,
        &[
            "--from",
            "teacher@wcs.london",
            "--to",
            "parent@gmail.com",
            "--header",
            "Subject: Trip on Friday",
            "--body",
            "The coach leaves at nine.",
        ],
    )
    .await;
    assert!(data_reply(&t).starts_with("<-  250 2.0.0"), "{t}");
    let arrived = sink.messages();
    assert_eq!(arrived.len(), 1, "{arrived:?}");
    assert!(arrived[0].contains("Subject: Trip on Friday"));
    assert!(arrived[0].contains("The coach leaves at nine."));

    // A program renamed .pdf, attached by swaks itself.
    let pe = dir.path().join("invoice.pdf");
    let mut program = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    program.resize(512, 0);
    std::fs::write(&pe, &program).unwrap();
    let attach = format!("@{}", pe.display());
    let t = swaks(
        relay,
        &[
            "--from",
            "teacher@wcs.london",
            "--to",
            "parent@gmail.com",
            "--header",
            "Subject: Invoice",
            "--body",
            "Attached.",
            "--attach-type",
            "application/pdf",
            "--attach-name",
            "invoice.pdf",
            "--attach",
            &attach,
        ],
    )
    .await;
    let reply = data_reply(&t);
    assert!(reply.starts_with("<** 550 5.7.1"), "{t}");
    assert!(
        reply.contains("[wcs 3.2.9, rule mail-executables]"),
        "{reply}"
    );

    // Whole messages from the fixtures, sent as they are.
    let cases = [
        (
            "zip-scr.eml",
            "stranger@example.net",
            "office@wcs.london",
            "[wcs 3.2.9, rule mail-executables]",
        ),
        (
            "class-list.eml",
            "teacher@wcs.london",
            "coach-company@example.com",
            "[wcs 3.2.1, rule mail-bulk-personal-data]",
        ),
        (
            "blocked-sender.eml",
            "deals@bulk-offers.example",
            "office@wcs.london",
            "[wcs 3.2.7, rule mail-blocked-senders]",
        ),
    ];
    for (file, from, to, cites) in cases {
        let data = format!("@{}", fixture(file).display());
        let t = swaks(relay, &["--from", from, "--to", to, "--data", &data]).await;
        let reply = data_reply(&t);
        assert!(reply.starts_with("<** 550 5.7.1"), "{file}: {t}");
        assert!(reply.contains(cites), "{file}: {reply}");
    }

    // An NI number in the subject, between two staff.
    let t = swaks(
        relay,
        &[
            "--from",
            "teacher@wcs.london",
            "--to",
            "payroll@wcs.london",
            "--header",
            "Subject: New starter AB 12 34 56 C",
            "--body",
            "Details to follow.",
        ],
    )
    .await;
    assert!(
        data_reply(&t).contains("[wcs 5.7, rule mail-personal-data-subject]"),
        "{t}"
    );

    // The encrypted class list goes out.
    let data = format!("@{}", fixture("class-list-encrypted.eml").display());
    let t = swaks(
        relay,
        &[
            "--from",
            "teacher@wcs.london",
            "--to",
            "coach-company@example.com",
            "--data",
            &data,
        ],
    )
    .await;
    assert!(data_reply(&t).starts_with("<-  250"), "{t}");

    // The same encrypted archive from outside cannot be checked: held, not delivered.
    let t = swaks(
        relay,
        &[
            "--from",
            "someone@example.com",
            "--to",
            "office@wcs.london",
            "--data",
            &data,
        ],
    )
    .await;
    assert!(
        data_reply(&t).starts_with("<-  250 2.6.0 Held for review"),
        "{t}"
    );
    // Held whole in the store: envelope and the original bytes.
    let held = hallpass_store::testing::query_strings(
        &server.store,
        "SELECT sender || '|' || recipients || '|' || status || '|' || coalesce(rule, '-') \
         FROM mail_quarantine",
    )
    .await
    .unwrap();
    assert_eq!(
        held,
        ["someone@example.com|[\"office@wcs.london\"]|held|mail-unchecked-archives"]
    );
    let (_, released) = server
        .store
        .quarantine()
        .list(false, 10)
        .await
        .map(|h| (h.len(), h))
        .unwrap();
    assert_eq!(released[0].detectors, ["attachment:encrypted-archive"]);

    // Nothing rejected or held reached the sink.
    assert_eq!(sink.messages().len(), 2);

    let events = mail_events(&server).await;
    let short: Vec<String> = events
        .iter()
        .map(|e| e.splitn(5, '|').take(4).collect::<Vec<_>>().join("|"))
        .collect();
    assert_eq!(
        short,
        [
            "t.teacher|allow|-|-",
            "t.teacher|block|mail-executables|3.2.9",
            "-|block|mail-executables|3.2.9",
            "t.teacher|block|mail-bulk-personal-data|3.2.1",
            "-|block|mail-blocked-senders|3.2.7",
            "t.teacher|block|mail-personal-data-subject|5.7",
            "t.teacher|allow|-|-",
            "-|quarantine|mail-unchecked-archives|3.4.5",
        ]
    );
    assert!(
        events[1].contains("\"detectors\":[\"attachment:executable\"]"),
        "{}",
        events[1]
    );
    assert!(
        events[3].contains("\"direction\":\"outbound\""),
        "{}",
        events[3]
    );
    let contents = hallpass_store::testing::query_strings(
        &server.store,
        "SELECT content FROM event_content WHERE kind = 'mail'",
    )
    .await
    .unwrap();
    assert!(
        contents
            .iter()
            .any(|c| c.starts_with("Subject: Trip on Friday")),
        "{contents:?}"
    );
    server.stop().await.unwrap();
    drop(sink);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_hop_down_defers_then_delivers_once() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let relay = server.addrs("mail")[0];
    let args = [
        "--from",
        "teacher@wcs.london",
        "--to",
        "parent@gmail.com",
        "--header",
        "Subject: Parents evening",
        "--body",
        "Thursday at six.",
    ];
    let t = swaks(relay, &args).await;
    assert!(data_reply(&t).starts_with("<** 451 4.4.1"), "{t}");

    // The sending MTA retries once the next hop is back: one copy arrives.
    let sink = sink(port, dir.path());
    let t = swaks(relay, &args).await;
    assert!(data_reply(&t).starts_with("<-  250"), "{t}");
    let arrived = sink.messages();
    assert_eq!(arrived.len(), 1, "{arrived:?}");
    assert!(arrived[0].contains("Subject: Parents evening"));

    let events = mail_events(&server).await;
    let verdicts: Vec<&str> = events
        .iter()
        .map(|e| e.split('|').nth(1).unwrap())
        .collect();
    assert_eq!(verdicts, ["deferred", "allow"]);

    // Journaled once (the deferred attempt was not delivered), whole, with its envelope.
    let journal = || async {
        hallpass_store::testing::query_strings(
            &server.store,
            "SELECT direction || '|' || sender || '|' || recipients || '|' || \
             coalesce(person, '-') || '|' || CAST(message AS TEXT) FROM mail_journal",
        )
        .await
        .unwrap()
    };
    // The copy is written just after the 250, by the journal's writer.
    let mut copies = Vec::new();
    for _ in 0..50 {
        copies = journal().await;
        if !copies.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(
        copies[0].starts_with("outbound|teacher@wcs.london|[\"parent@gmail.com\"]|t.teacher|"),
        "{copies:?}"
    );
    assert!(copies[0].contains("Subject: Parents evening"), "{copies:?}");

    // The copy is content: ICT support cannot read it; inside an investigation the
    // headteacher authorises (the sender is staff), it is there, whole.
    let ict = server.client_for(Role::NetworkManager).await.unwrap();
    let (status, _) = ict
        .get_json("/api/v1/people/t.teacher/content")
        .await
        .unwrap();
    assert_eq!(status, 403);
    let head = server.client_for(Role::Headteacher).await.unwrap();
    let now = server.clock.now();
    let hours = |h: i64| (now + jiff::SignedDuration::from_hours(h)).to_string();
    let opened = head
        .post("/api/v1/investigations")
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"person": "t.teacher", "purpose": "Allegation from a parent",
                "from": hours(-1), "to": hours(1), "until": hours(24)})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status().as_u16(), 201);
    let (status, content) = head
        .get_json("/api/v1/people/t.teacher/content")
        .await
        .unwrap();
    assert_eq!(status, 200, "{content}");
    let messages = content["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{content}");
    assert_eq!(messages[0]["direction"], "outbound");
    assert_eq!(messages[0]["recipients"][0], "parent@gmail.com");
    let text = messages[0]["text"].as_str().unwrap();
    assert!(text.contains("Thursday at six."), "{text}");

    // After the retention period ([mail] journal_days, 365 by default) it is dropped.
    server.clock.advance(Duration::from_secs(366 * 24 * 3600));
    let mut left = copies;
    for _ in 0..50 {
        left = journal().await;
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "{left:?}");
    server.stop().await.unwrap();
    drop(sink);
}

/// Reads one reply (all its lines) and returns its last line.
async fn reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> String {
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return line.trim_end().to_string();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_smtp_gets_clean_answers() {
    // No tools needed: raw bytes over a real socket, next hop never reached.
    let server = start(SocketAddr::from(([127, 0, 0, 1], free_port()))).await;
    let relay = server.addrs("mail")[0];
    let stream = tokio::net::TcpStream::connect(relay).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    assert!(reply(&mut read).await.starts_with("220 "));
    let mut talk = async |bytes: &[u8]| {
        write.write_all(bytes).await.unwrap();
        reply(&mut read).await
    };
    assert!(
        talk(b"\x00\xff\xfe garbage\r\n")
            .await
            .starts_with("500 5.5.2")
    );
    assert!(
        talk(b"MAIL FROM:<a@wcs.london>\r\n")
            .await
            .starts_with("503 5.5.1")
    );
    // Bare line feeds are accepted as line ends.
    assert!(talk(b"EHLO client\n").await.starts_with("250 "));
    let long = format!("NOOP {}\r\n", "x".repeat(5000));
    assert!(
        talk(long.as_bytes())
            .await
            .starts_with("500 5.5.2 Line too long")
    );
    assert!(
        talk(b"MAIL FROM:<a@wcs.london> SIZE=999999999\r\n")
            .await
            .starts_with("552 5.3.4")
    );
    assert!(
        talk(b"MAIL FROM:<a@wcs.london>\r\n")
            .await
            .starts_with("250 ")
    );
    for i in 0..100 {
        let r = talk(format!("RCPT TO:<r{i}@wcs.london>\r\n").as_bytes()).await;
        assert!(r.starts_with("250 "), "{i}: {r}");
    }
    assert!(
        talk(b"RCPT TO:<one-too-many@wcs.london>\r\n")
            .await
            .starts_with("452 4.5.3")
    );
    assert!(talk(b"DATA\r\n").await.starts_with("354 "));
    // A line over 1000 bytes in the message: read to the end, then refused.
    let body = format!("Subject: x\r\n\r\n{}\r\n.\r\n", "y".repeat(1500));
    assert!(talk(body.as_bytes()).await.starts_with("554 5.6.0"));
    // Over the size limit (25 MiB by default): read to the end, then refused.
    assert!(
        talk(b"MAIL FROM:<a@wcs.london>\r\n")
            .await
            .starts_with("250 ")
    );
    assert!(
        talk(b"RCPT TO:<b@wcs.london>\r\n")
            .await
            .starts_with("250 ")
    );
    assert!(talk(b"DATA\r\n").await.starts_with("354 "));
    let line = format!("{}\r\n", "z".repeat(998));
    let mut big = String::from("Subject: big\r\n\r\n");
    while big.len() < 26 << 20 {
        big.push_str(&line);
    }
    big.push_str(".\r\n");
    assert!(talk(big.as_bytes()).await.starts_with("552 5.3.4"));
    // 10,000 MIME parts: parsed, then refused unread by the rules.
    assert!(
        talk(b"MAIL FROM:<a@wcs.london>\r\n")
            .await
            .starts_with("250 ")
    );
    assert!(
        talk(b"RCPT TO:<b@wcs.london>\r\n")
            .await
            .starts_with("250 ")
    );
    assert!(talk(b"DATA\r\n").await.starts_with("354 "));
    let mut parts =
        String::from("Subject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
    for i in 0..10_000 {
        parts.push_str(&format!("--b\r\nContent-Type: text/plain\r\n\r\n{i}\r\n"));
    }
    parts.push_str("--b--\r\n.\r\n");
    assert!(
        talk(parts.as_bytes())
            .await
            .starts_with("554 5.6.0 Too many MIME parts")
    );
    // Truncated base64: decided (the attachment's name is enough), not a crash.
    assert!(
        talk(b"MAIL FROM:<a@wcs.london>\r\n")
            .await
            .starts_with("250 ")
    );
    assert!(talk(b"RCPT TO:<b@gmail.com>\r\n").await.starts_with("250 "));
    assert!(talk(b"DATA\r\n").await.starts_with("354 "));
    let mut data = std::fs::read(fixture("malformed.eml")).unwrap();
    data.extend_from_slice(b"\r\n.\r\n");
    assert!(talk(&data).await.starts_with("550 5.7.1"));
    // The session is still usable, and QUIT closes it.
    assert!(talk(b"RSET\r\n").await.starts_with("250 "));
    assert!(talk(b"QUIT\r\n").await.starts_with("221 "));
    server.stop().await.unwrap();
}

/// An email sanction (issue 20: "suspend a person's ... email") refuses the person's mail
/// within a second, citing it; others' mail still goes; it lifts on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_senders_mail_is_refused_until_the_sanction_ends() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = sink(port, dir.path());
    let server = start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let relay = server.addrs("mail")[0];
    let until = server.clock.now() + jiff::SignedDuration::from_hours(24);
    server
        .store
        .safeguarding()
        .sanction(
            "mr.dsl",
            &hallpass_store::safeguarding::NewSanction {
                person: "s.student",
                kind: "email",
                target: None,
                until,
                reason: "junk mail to the whole year",
                clause: Some("3.2.8"),
                incident: None,
            },
            server.clock.now(),
        )
        .await
        .unwrap();
    // The exceptions follower carries it to the snapshot within a second.
    let clock = hallpass_clock::Clock::system();
    let sanctioned = clock.instant();
    while server
        .shared
        .engine
        .snapshot()
        .live
        .email_sanctions
        .is_empty()
    {
        assert!(
            sanctioned.elapsed() < Duration::from_secs(1),
            "not in the snapshot within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = send_homework(relay, "sam.student@wcs.london").await;
    let reply = data_reply(&t);
    assert!(
        reply.starts_with("<** 550 5.7.1 Your email account is suspended"),
        "{t}"
    );
    assert!(
        reply.contains("junk mail to the whole year") && reply.contains("3.2.8"),
        "{t}"
    );
    let t = send_homework(relay, "teacher@wcs.london").await;
    assert!(data_reply(&t).starts_with("<-  250"), "{t}");
    // It ends on time.
    server.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let t = send_homework(relay, "sam.student@wcs.london").await;
    assert!(data_reply(&t).starts_with("<-  250"), "{t}");
    assert_eq!(sink.messages().len(), 2);
    server.stop().await.unwrap();
}

async fn send_homework(relay: SocketAddr, from: &str) -> String {
    swaks(
        relay,
        &[
            "--from",
            from,
            "--to",
            "friend@wcs.london",
            "--header",
            "Subject: Homework",
            "--body",
            "See you tomorrow.",
        ],
    )
    .await
}

/// One swaks message from `from` to `to`; the reply to the message.
async fn send(relay: SocketAddr, from: &str, to: &str, subject: &str, body: &str) -> String {
    let header = format!("Subject: {subject}");
    let t = swaks(
        relay,
        &[
            "--from", from, "--to", to, "--header", &header, "--body", body,
        ],
    )
    .await;
    data_reply(&t).to_string()
}

/// A release or delete through the API, with a reason: status and JSON answer.
async fn decide(
    client: &hallpass::testkit::console::ConsoleClient,
    method: &str,
    path: &str,
    reason: &str,
) -> (u16, serde_json::Value) {
    let builder = if method == "DELETE" {
        client.delete(path)
    } else {
        client.post(path)
    };
    let r = builder
        .header("content-type", "application/json")
        .body(serde_json::json!({ "reason": reason }).to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}
