//! The email filter's newer rules and transports over real sockets: students' send
//! rate, the external-sender banner, STARTTLS with swaks --tls, XFORWARD.

use super::*;

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

/// With `[mail] authenticated_header`, the SASL login Postfix writes into the first
/// `Received:` header names the sender: a student who logged in as himself but put a
/// teacher's address in MAIL FROM is held by the student rule, and the event names him
/// and his login. The same comment further down (the client's own, forgeable) is not
/// believed, and without the setting no header is. A login with the school's domain
/// (Cyrus SASL's realm) names the username before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mtas_sasl_login_names_the_sender() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = sink(port, dir.path());
    let abusive = "Subject: hey\r\n\r\nyou fucking idiot, go fuck yourself\r\n";
    let postfix = "Received: from pc1 (pc1.wcs.london [10.1.2.3])\r\n\
        \t(Authenticated sender: S.Student)\r\n\
        \tby mta.wcs.london (Postfix) with ESMTPSA id 4Bc1; Mon, 7 Dec 2026 09:00:00 +0000\r\n";
    let plain = "Received: from pc1 (pc1.wcs.london [10.1.2.3])\r\n\
        \tby mta.wcs.london (Postfix) with ESMTP id 4Bc2; Mon, 7 Dec 2026 09:00:00 +0000\r\n";
    let forged = "Received: from x (Authenticated sender: s.student) by y; Mon, 7 Dec 2026\r\n";
    let send_as_teacher = async |relay: SocketAddr, name: &str, message: String| {
        let file = dir.path().join(name);
        std::fs::write(&file, message).unwrap();
        let data = format!("@{}", file.display());
        let args = ["--from", "teacher@wcs.london", "--to", "alex@wcs.london"];
        let t = swaks(relay, &[&args[..], &["--data", &data]].concat()).await;
        data_reply(&t).to_string()
    };

    let server = TestServer::start(TestOptions {
        policy: Some(WCS.to_string()),
        roster: Some(ROSTER.to_string()),
        mail_next_hop: Some(SocketAddr::from(([127, 0, 0, 1], port))),
        config: Some("version = 1\n[mail]\nauthenticated_header = true\n".into()),
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let relay = server.addrs("mail")[0];
    let r = send_as_teacher(relay, "login.eml", format!("{postfix}{abusive}")).await;
    assert!(r.starts_with("<-  250 2.6.0 Held for review"), "{r}");
    let r = send_as_teacher(relay, "forged.eml", format!("{plain}{forged}{abusive}")).await;
    assert!(r.starts_with("<-  250 2.0.0"), "a teacher's mail: {r}");
    let realm = postfix.replace("S.Student", "s.student@wcs.london");
    let r = send_as_teacher(relay, "realm.eml", format!("{realm}{abusive}")).await;
    assert!(r.starts_with("<-  250 2.6.0 Held for review"), "{r}");
    let events = mail_events(&server).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events[0].starts_with("s.student|quarantine|mail-student-abusive-language|")
            && events[0].contains(r#""login":"S.Student""#),
        "{events:?}"
    );
    assert!(
        events[1].starts_with("t.teacher|allow|") && !events[1].contains("login"),
        "{events:?}"
    );
    assert!(events[2].starts_with("s.student|quarantine|"), "{events:?}");
    server.stop().await.unwrap();

    // Off by default: the header is not read at all.
    let server = start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let relay = server.addrs("mail")[0];
    let r = send_as_teacher(relay, "login.eml", format!("{postfix}{abusive}")).await;
    assert!(r.starts_with("<-  250 2.0.0"), "{r}");
    let events = mail_events(&server).await;
    assert!(events[0].starts_with("t.teacher|allow|"), "{events:?}");
    server.stop().await.unwrap();
    drop(sink);
}
