//! The email filter over real sockets: the real `swaks` sends through `serve`'s mail
//! relay to a real SMTP sink, `python3 -m aiosmtpd` with its Maildir handler (Debian
//! `python3-aiosmtpd`), which records what arrived. Rejections cite the clause inside
//! the SMTP session; a sink that is down gives 451 and the retry is delivered once;
//! every message is a `mail` event naming the sender's person.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hallpass::testkit::tools::SmtpSink;
use hallpass::testkit::{TestOptions, TestServer};
use hallpass_web::Role;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const WCS: &str = include_str!("../../../../../examples/policies/wcs.toml");
const ROSTER: &str = "username,display_name,role,year_group,form,email,mis_id,groups\n\
t.teacher,Tess Teacher,teacher,,,teacher@wcs.london,T1,\n\
i.ict,Ivy Ict,staff,,,ict@wcs.london,I1,\n\
s.student,Sam Student,student,9,9B,sam.student@wcs.london,S1,\n";

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
    let copies = journal().await;
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(
        copies[0].starts_with("outbound|teacher@wcs.london|[\"parent@gmail.com\"]|t.teacher|"),
        "{copies:?}"
    );
    assert!(copies[0].contains("Subject: Parents evening"), "{copies:?}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_students_burst_is_limited_per_hour() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = sink(port, dir.path());
    let server = start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let relay = server.addrs("mail")[0];

    // 200 messages from one student, four swaks at a time: the policy's 30 an hour go
    // through, every other one is refused citing the junk-mail clause.
    let replies: Vec<String> = futures::future::join_all((0..4).map(|worker| async move {
        let mut out = Vec::new();
        for i in 0..50 {
            let n = worker * 50 + i;
            out.push(
                send(
                    relay,
                    "sam.student@wcs.london",
                    "friend@wcs.london",
                    &format!("Message {n}"),
                    "Hi",
                )
                .await,
            );
        }
        out
    }))
    .await
    .into_iter()
    .flatten()
    .collect();
    let accepted = replies
        .iter()
        .filter(|r| r.starts_with("<-  250 2.0.0"))
        .count();
    let limited: Vec<&String> = replies
        .iter()
        .filter(|r| {
            r.starts_with("<** 550 5.7.1")
                && r.contains("too many emails in the last hour")
                && r.contains("[wcs 3.2.8, rule mail-student-send-rate]")
        })
        .collect();
    assert_eq!((accepted, limited.len()), (30, 170), "{replies:#?}");
    assert_eq!(sink.messages().len(), 30);

    // A teacher is not limited by the students' rule, even now.
    let r = send(
        relay,
        "teacher@wcs.london",
        "head@wcs.london",
        "Minutes",
        "Attached.",
    )
    .await;
    assert!(r.starts_with("<-  250 2.0.0"), "{r}");

    // An hour later the student may send again.
    server.clock.advance(Duration::from_secs(3601));
    let r = send(
        relay,
        "sam.student@wcs.london",
        "friend@wcs.london",
        "Later",
        "Hi",
    )
    .await;
    assert!(r.starts_with("<-  250 2.0.0"), "{r}");
    assert_eq!(sink.messages().len(), 32);

    let events = mail_events(&server).await;
    let limited_events = events
        .iter()
        .filter(|e| e.starts_with("s.student|block|mail-student-send-rate|3.2.8|"))
        .count();
    assert_eq!(limited_events, 170);
    server.stop().await.unwrap();
    drop(sink);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abusive_mail_from_a_student_is_held_and_alerted() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = sink(port, dir.path());
    let server = start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let relay = server.addrs("mail")[0];

    let r = send(
        relay,
        "sam.student@wcs.london",
        "alex@wcs.london",
        "hey",
        "you f.u.c.k.i.n.g idiot, go fuck yourself",
    )
    .await;
    assert!(r.starts_with("<-  250 2.6.0 Held for review"), "{r}");
    assert!(r.contains("abusive language"), "{r}");
    // The same words from a teacher are not the students' rule's business.
    let r = send(
        relay,
        "teacher@wcs.london",
        "head@wcs.london",
        "Quote",
        "He said: fuck off",
    )
    .await;
    assert!(r.starts_with("<-  250 2.0.0"), "{r}");
    let arrived = sink.messages();
    assert_eq!(arrived.len(), 1, "only the teacher's arrived: {arrived:?}");
    assert!(arrived[0].contains("Subject: Quote"));

    let events = mail_events(&server).await;
    assert!(
        events[0].starts_with("s.student|quarantine|mail-student-abusive-language|3.2.3|"),
        "{events:?}"
    );
    assert!(
        events[0].contains("language:offensive-language"),
        "{events:?}"
    );

    // The safeguarding follower raises a conduct alert for the head of year.
    let mut alerts = Vec::new();
    for _ in 0..200 {
        alerts = hallpass_store::testing::query_strings(
            &server.store,
            "SELECT person || '|' || kind || '|' || theme || '|' || severity || '|' || route \
             || '|' || coalesce(clause, '-') || '|' || summary FROM alerts",
        )
        .await
        .unwrap();
        if !alerts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].starts_with(
            "s.student|conduct|mail-student-abusive-language|3|head_of_year|3.2.3|s.student's email"
        ),
        "{alerts:?}"
    );
    assert!(alerts[0].contains("was held"), "{alerts:?}");

    // ICT support sees it held in the console (envelope and rule, not the words); a
    // teacher may not look.
    let teacher = server.client_for(Role::Teacher).await.unwrap();
    assert_eq!(teacher.get_json("/api/v1/quarantine").await.unwrap().0, 403);
    let ict = server.client_for(Role::NetworkManager).await.unwrap();
    let (status, listed) = ict.get_json("/api/v1/quarantine").await.unwrap();
    assert_eq!(status, 200, "{listed}");
    let list = listed.as_array().unwrap();
    assert_eq!(list.len(), 1, "{listed}");
    let item = &list[0];
    assert_eq!(item["sender"], "sam.student@wcs.london");
    assert_eq!(item["person"], "s.student");
    assert_eq!(item["rule"], "mail-student-abusive-language");
    assert_eq!(item["clause"], "3.2.3");
    assert_eq!(item["status"], "held");
    assert!(!listed.to_string().contains("idiot"), "{listed}");
    let page = ict
        .get("/quarantine")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("mail-student-abusive-language") && !page.contains("idiot"));
    let id = item["id"].as_i64().unwrap();

    // A release needs a reason; then the message is delivered, once.
    let (status, _) = decide(
        &ict,
        "POST",
        &format!("/api/v1/quarantine/{id}/release"),
        " ",
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = decide(
        &ict,
        "POST",
        &format!("/api/v1/quarantine/{id}/release"),
        "Spoke to Sam; a quote from a book",
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("release")),
        "{body}"
    );
    let (status, body) = decide(
        &ict,
        "POST",
        &format!("/api/v1/quarantine/{id}/release"),
        "again",
    )
    .await;
    assert_eq!(status, 400, "released once only: {body}");
    let mut arrived = Vec::new();
    for _ in 0..100 {
        arrived = sink.messages();
        if arrived.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        arrived.iter().any(|m| m.contains("Subject: hey")),
        "{arrived:?}"
    );
    // Seconds later it has still arrived only once.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sink.messages().len(), 2);
    let released = server.store.quarantine().get(id).await.unwrap();
    assert_eq!(released.status, "released");
    // The released message is journaled like any delivered one.
    let journaled = hallpass_store::testing::query_strings(
        &server.store,
        "SELECT direction || '|' || sender FROM mail_journal WHERE sender LIKE 'sam.%'",
    )
    .await
    .unwrap();
    assert_eq!(journaled, ["internal|sam.student@wcs.london"]);

    // A second held message is deleted, with a reason; its bytes are gone.
    let r = send(
        relay,
        "sam.student@wcs.london",
        "alex@wcs.london",
        "again",
        "fuck off",
    )
    .await;
    assert!(r.starts_with("<-  250 2.6.0"), "{r}");
    let (_, listed) = ict.get_json("/api/v1/quarantine").await.unwrap();
    let id2 = listed[0]["id"].as_i64().unwrap();
    assert_ne!(id2, id);
    let (status, body) = decide(
        &ict,
        "DELETE",
        &format!("/api/v1/quarantine/{id2}"),
        "Dealt with by head of year",
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("deleted")),
        "{body}"
    );
    let bytes = hallpass_store::testing::query_strings(
        &server.store,
        &format!("SELECT CAST(length(message) AS TEXT) FROM mail_quarantine WHERE id = {id2}"),
    )
    .await
    .unwrap();
    assert_eq!(bytes, ["0"]);
    // A third, deleted with the page's form.
    let r = send(
        relay,
        "sam.student@wcs.london",
        "alex@wcs.london",
        "third",
        "shit",
    )
    .await;
    assert!(r.starts_with("<-  250 2.6.0"), "{r}");
    let (_, listed) = ict.get_json("/api/v1/quarantine").await.unwrap();
    let id3 = listed[0]["id"].as_i64().unwrap();
    let r = ict
        .post(&format!("/quarantine/{id3}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("decision=delete&reason=Rude%2C+not+abusive")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains(&format!("Message {id3} deleted.")), "{page}");
    assert_eq!(
        server.store.quarantine().get(id3).await.unwrap().status,
        "deleted"
    );
    let (_, waiting) = ict.get_json("/api/v1/quarantine").await.unwrap();
    assert_eq!(waiting, serde_json::json!([]));
    let audit = hallpass_store::testing::query_strings(
        &server.store,
        "SELECT action || '|' || subject FROM audit_log WHERE action LIKE 'mail.quarantine.%' ORDER BY seq",
    )
    .await
    .unwrap();
    assert_eq!(
        audit,
        [
            format!("mail.quarantine.release|quarantine:{id}"),
            format!("mail.quarantine.delete|quarantine:{id2}"),
            format!("mail.quarantine.delete|quarantine:{id3}")
        ]
    );
    server.stop().await.unwrap();
    drop(sink);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_mail_from_outside_carries_the_external_banner() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = sink(port, dir.path());
    let server = start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let relay = server.addrs("mail")[0];
    let banner = "CAUTION: this email came from outside WCS.";

    let r = send(
        relay,
        "parent@gmail.com",
        "teacher@wcs.london",
        "Absence",
        "Sam is ill today.",
    )
    .await;
    assert!(r.starts_with("<-  250 2.0.0"), "{r}");
    // Text in quoted-printable and HTML in base64, as webmail sends them.
    let html_b64 = "PGh0bWw+PGJvZHk+PHA+U2F0dXJkYXkgYXQgdGVuLjwvcD48L2JvZHk+PC9odG1sPg==";
    let fixtures = dir.path().join("fixtures.eml");
    std::fs::write(
        &fixtures,
        format!(
            "From: club@sports.example\r\nTo: office@wcs.london\r\nSubject: Fixtures\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
             --alt\r\nContent-Type: text/plain; charset=UTF-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\nSaturday at ten =E2=80=93 bring boots.\r\n\
             --alt\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             {html_b64}\r\n--alt--\r\n"
        ),
    )
    .unwrap();
    let data = format!("@{}", fixtures.display());
    let t = swaks(
        relay,
        &[
            "--from",
            "club@sports.example",
            "--to",
            "office@wcs.london",
            "--data",
            &data,
        ],
    )
    .await;
    assert!(data_reply(&t).starts_with("<-  250 2.0.0"), "{t}");
    // Outbound and internal mail is left as it was.
    let r = send(
        relay,
        "teacher@wcs.london",
        "parent@gmail.com",
        "Re: Absence",
        "Get well soon.",
    )
    .await;
    assert!(r.starts_with("<-  250 2.0.0"), "{r}");

    let arrived = sink.messages();
    assert_eq!(arrived.len(), 3, "{arrived:?}");
    // The sink's Maildir has no order: each message by its subject.
    let by_subject = |subject: &str| {
        arrived
            .iter()
            .find(|m| m.contains(&format!("Subject: {subject}\n")))
            .unwrap_or_else(|| panic!("{subject}: {arrived:?}"))
    };
    let plain = by_subject("Absence");
    let body = plain.split_once("\n\n").map(|(_, b)| b).unwrap_or_default();
    assert!(body.starts_with(banner), "{plain}");
    assert!(body.contains("Sam is ill today."), "{plain}");
    assert!(
        plain.contains("X-Hallpass-External-Sender: CAUTION"),
        "{plain}"
    );
    let multipart = by_subject("Fixtures");
    let text_at = multipart.find("quoted-printable\n\n").unwrap();
    assert!(
        multipart[text_at..].starts_with(&format!("quoted-printable\n\n{banner}")),
        "{multipart}"
    );
    assert!(multipart.contains("Saturday at ten =E2=80=93 bring boots."));
    // The HTML part was decoded, given the banner after <body>, and encoded again.
    let b64_at = multipart.find("base64\n\n").unwrap() + "base64\n\n".len();
    let b64: String = multipart[b64_at..]
        .lines()
        .take_while(|l| !l.starts_with("--alt"))
        .collect();
    let html = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64.trim()).unwrap(),
    )
    .unwrap();
    assert!(html.starts_with("<html><body><p style="), "{html}");
    assert!(html.contains(banner), "{html}");
    assert!(
        html.ends_with("<p>Saturday at ten.</p></body></html>"),
        "{html}"
    );
    let outbound = by_subject("Re: Absence");
    assert!(!outbound.contains(banner), "{outbound}");
    server.stop().await.unwrap();
    drop(sink);
}

/// A self-signed certificate and key for `mail.wcs.london`, made by the `openssl` tool.
fn self_signed(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("mail.crt"), dir.join("mail.key"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg("/CN=mail.wcs.london")
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .ok()?;
    made.status.success().then_some((cert, key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_the_configured_certificate() {
    if !have_tools()
        || !hallpass::testkit::tools::require(
            "openssl",
            &["version"],
            "openssl",
            "the STARTTLS test",
        )
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path()).unwrap();
    let port = free_port();
    let sink = sink(port, dir.path());
    let server = TestServer::start(TestOptions {
        policy: Some(WCS.to_string()),
        roster: Some(ROSTER.to_string()),
        mail_next_hop: Some(SocketAddr::from(([127, 0, 0, 1], port))),
        config: Some(format!(
            "version = 1\n[mail]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        )),
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let relay = server.addrs("mail")[0];

    // swaks asks for STARTTLS, negotiates, greets again and sends over TLS.
    let t = swaks(
        relay,
        &[
            "--tls",
            "--from",
            "teacher@wcs.london",
            "--to",
            "parent@gmail.com",
            "--header",
            "Subject: Over TLS",
            "--body",
            "Encrypted on the way in.",
        ],
    )
    .await;
    assert!(
        t.contains("250-STARTTLS") || t.contains("250 STARTTLS"),
        "{t}"
    );
    assert!(t.contains("<-  220 2.0.0 Ready to start TLS"), "{t}");
    assert!(t.contains("=== TLS started"), "{t}");
    // After the handshake the conversation is encrypted: swaks marks it `<~`.
    assert!(t.contains("<~  250 2.0.0 Delivered"), "{t}");
    assert!(!t.contains("~> STARTTLS"), "TLS not offered twice: {t}");
    let arrived = sink.messages();
    assert_eq!(arrived.len(), 1);
    assert!(arrived[0].contains("Encrypted on the way in."));
    // The rules apply the same under TLS.
    let pe = dir.path().join("invoice.pdf");
    let mut program = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    program.resize(512, 0);
    std::fs::write(&pe, &program).unwrap();
    let attach = format!("@{}", pe.display());
    let t = swaks(
        relay,
        &[
            "--tls",
            "--from",
            "teacher@wcs.london",
            "--to",
            "parent@gmail.com",
            "--attach",
            &attach,
        ],
    )
    .await;
    assert!(t.contains("<~* 550 5.7.1"), "{t}");
    assert!(t.contains("[wcs 3.2.9, rule mail-executables]"), "{t}");
    server.stop().await.unwrap();

    // A certificate without its key is refused at start, naming the fields.
    let err = TestServer::start(TestOptions {
        policy: Some(WCS.to_string()),
        mail_next_hop: Some(SocketAddr::from(([127, 0, 0, 1], port))),
        config: Some(format!(
            "version = 1\n[mail]\ntls_cert = \"{}\"\n",
            cert.display()
        )),
        ..TestOptions::default()
    })
    .await
    .err()
    .map(|e| format!("{e:#}"))
    .unwrap_or_default();
    assert!(err.contains("tls_cert and tls_key go together"), "{err}");
    drop(sink);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ict_support_blocks_and_unblocks_a_sender_from_the_console() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = sink(port, dir.path());
    let server = start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let relay = server.addrs("mail")[0];
    let ict = server.client_for(Role::NetworkManager).await.unwrap();
    let teacher = server.client_for(Role::Teacher).await.unwrap();
    let post_block = |client: &hallpass::testkit::console::ConsoleClient, sender: &str| {
        client
            .post("/api/v1/mail/blocks")
            .header("content-type", "application/json")
            .body(
                serde_json::json!({ "sender": sender, "reason": "Phishing a parent" }).to_string(),
            )
            .send()
    };
    assert_eq!(
        post_block(&teacher, "pest.example")
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    let r = post_block(&ict, "wcs.london").await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "the school's own domain");
    let r = post_block(&ict, "Annoying.Example").await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let block: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(block["sender"], "annoying.example");
    let id = block["id"].as_i64().unwrap();
    let r = post_block(&ict, "annoying.example").await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "blocked once");

    // The relay reads the blocks every second: a subdomain's sender is refused.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = send(
        relay,
        "win@prizes.annoying.example",
        "office@wcs.london",
        "You won",
        "Click",
    )
    .await;
    assert!(
        r.starts_with("<** 550 5.7.1 Sender blocked by ICT support: Phishing a parent"),
        "{r}"
    );
    assert!(r.contains(&format!("[sender block {id}]")), "{r}");
    assert!(sink.messages().is_empty());

    // Lifted with a reason: delivered again.
    let (status, _) = decide(
        &ict,
        "DELETE",
        &format!("/api/v1/mail/blocks/{id}"),
        "Sorted out",
    )
    .await;
    assert_eq!(status, 204);
    let (_, blocks) = ict.get_json("/api/v1/mail/blocks").await.unwrap();
    assert_eq!(blocks, serde_json::json!([]));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = send(
        relay,
        "win@prizes.annoying.example",
        "office@wcs.london",
        "Sorry",
        "Hi",
    )
    .await;
    assert!(r.starts_with("<-  250 2.0.0"), "{r}");
    let audit = hallpass_store::testing::query_strings(
        &server.store,
        "SELECT action || '|' || subject FROM audit_log WHERE action LIKE 'mail.block.%' ORDER BY seq",
    )
    .await
    .unwrap();
    assert_eq!(
        audit,
        [
            "mail.block.add|annoying.example",
            "mail.block.remove|annoying.example"
        ]
    );

    // The same from the console page's forms.
    let form = |path: &str, body: &str| {
        ict.post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
    };
    let r = form(
        "/quarantine/blocks",
        "sender=offers%40bulk.example&reason=Junk",
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("offers@bulk.example is blocked."), "{page}");
    let (_, blocks) = ict.get_json("/api/v1/mail/blocks").await.unwrap();
    let id = blocks[0]["id"].as_i64().unwrap();
    let r = form(
        &format!("/quarantine/blocks/{id}/remove"),
        "reason=Wrong+address",
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains(&format!("Block {id} lifted."))
    );
    let r = form("/quarantine/blocks", "sender=wcs.london&reason=x")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    server.stop().await.unwrap();
    drop(sink);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xforward_from_the_local_mta_names_the_real_client_in_events() {
    // No tools needed: the MTA's side over a raw socket; the next hop is down, so the
    // message is deferred (and still recorded).
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
    assert!(talk(b"EHLO mta.wcs.london\r\n").await.starts_with("250 "));
    let r = talk(b"XFORWARD NAME=pc7.wcs.london ADDR=10.20.30.40 PROTO=ESMTP HELO=pc7\r\n").await;
    assert!(r.starts_with("250 "), "{r}");
    assert!(
        talk(b"MAIL FROM:<teacher@wcs.london>\r\n")
            .await
            .starts_with("250 ")
    );
    assert!(
        talk(b"RCPT TO:<parent@gmail.com>\r\n")
            .await
            .starts_with("250 ")
    );
    assert!(talk(b"DATA\r\n").await.starts_with("354 "));
    let r = talk(b"Subject: Hello\r\n\r\nHi.\r\n.\r\n").await;
    assert!(r.starts_with("451 "), "{r}");
    server.shared.writer.flush().await;
    let seen = hallpass_store::testing::query_strings(
        &server.store,
        "SELECT coalesce(person, '-') || '|' || coalesce(client_ip, '-') || '|' || verdict \
         FROM decisions WHERE kind = 'mail'",
    )
    .await
    .unwrap();
    assert_eq!(seen, ["t.teacher|10.20.30.40|deferred"]);
    server.stop().await.unwrap();
}
