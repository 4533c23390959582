//! The email filter as a milter, over a real socket to `serve`: this test speaks the
//! milter protocol as Postfix does (protocol 6, every action and no-reply option
//! offered) and checks what the milter asks for and answers. Postfix itself drives the
//! milter in `.ci/mail-e2e.sh`.

use std::collections::HashMap;
use std::ffi::CString;

use bytes::Bytes;
use indymilter::message::command::{
    Command, ConnInfoPayload, EnvAddrPayload, HeaderPayload, MacroPayload, OptNegPayload,
};
use indymilter::message::reply::Reply as MilterReply;
use indymilter::{Actions, MacroStage, ProtoOpts, SocketInfo};
use tokio::io::BufStream;
use tokio::net::TcpStream;

use super::*;

/// The MTA's side of one milter connection.
struct Mta {
    stream: BufStream<TcpStream>,
    /// What the milter asked for in the negotiation.
    actions: Actions,
    opts: ProtoOpts,
    macros: HashMap<MacroStage, CString>,
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

impl Mta {
    async fn connect(milter: SocketAddr) -> Mta {
        let mut stream = BufStream::new(TcpStream::connect(milter).await.unwrap());
        let offer = Command::OptNeg(OptNegPayload {
            version: 6,
            actions: Actions::all(),
            opts: ProtoOpts::all(),
        });
        indymilter::message::write(&mut stream, offer.into_message())
            .await
            .unwrap();
        let reply = read(&mut stream).await;
        let MilterReply::OptNeg {
            actions,
            opts,
            macros,
            ..
        } = reply
        else {
            panic!("not a negotiation reply: {reply:?}");
        };
        let mut mta = Mta {
            stream,
            actions,
            opts,
            macros,
        };
        mta.send(Command::ConnInfo(ConnInfoPayload {
            hostname: c("pc.wcs.london"),
            socket_info: SocketInfo::Inet("10.1.2.3:50000".parse().unwrap()),
        }))
        .await;
        mta
    }

    async fn send(&mut self, command: Command) {
        indymilter::message::write(&mut self.stream, command.into_message())
            .await
            .unwrap();
    }

    /// Sends one message (with the SASL login as the `{auth_authen}` macro) and reads
    /// the milter's answers to its end: modifications, then the final answer.
    async fn message(
        &mut self,
        login: Option<&str>,
        from: &str,
        to: &str,
        eml: &[u8],
    ) -> Vec<MilterReply> {
        if let Some(login) = login {
            self.send(Command::DefMacros(MacroPayload {
                stage: MacroStage::Mail,
                macros: vec![c("{auth_authen}"), c(login)],
            }))
            .await;
        }
        self.send(Command::Mail(EnvAddrPayload {
            args: vec![c(&format!("<{from}>"))],
        }))
        .await;
        self.send(Command::Rcpt(EnvAddrPayload {
            args: vec![c(&format!("<{to}>"))],
        }))
        .await;
        self.send(Command::Data).await;
        let text = String::from_utf8_lossy(eml).replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        for line in head.lines() {
            // Postfix sends a folded header as one value; the fixtures fold none.
            let (name, value) = line.split_once(':').unwrap();
            self.send(Command::Header(HeaderPayload {
                name: c(name),
                value: c(value),
            }))
            .await;
        }
        self.send(Command::Eoh).await;
        let body = body.replace('\n', "\r\n").into_bytes();
        for chunk in body.chunks(65535) {
            self.send(Command::BodyChunk(Bytes::copy_from_slice(chunk)))
                .await;
        }
        self.send(Command::BodyEnd(Bytes::new())).await;
        let mut replies = Vec::new();
        loop {
            let reply = read(&mut self.stream).await;
            let last = matches!(
                reply,
                MilterReply::Continue
                    | MilterReply::Accept
                    | MilterReply::Discard
                    | MilterReply::Reject
                    | MilterReply::Tempfail
                    | MilterReply::ReplyCode { .. }
            );
            replies.push(reply);
            if last {
                return replies;
            }
        }
    }
}

async fn read(stream: &mut BufStream<TcpStream>) -> MilterReply {
    let message = tokio::time::timeout(Duration::from_secs(30), indymilter::message::read(stream))
        .await
        .expect("the milter answers")
        .unwrap();
    MilterReply::parse_reply(message).unwrap()
}

fn reply_text(replies: &[MilterReply]) -> String {
    match replies.last() {
        Some(MilterReply::ReplyCode { reply }) => reply.to_string_lossy().into_owned(),
        other => panic!("no reply code: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_milter_decides_as_the_relay_does() {
    // Nothing is delivered through the next hop here: the MTA delivers.
    let server = TestServer::start(TestOptions {
        policy: Some(WCS.to_string()),
        roster: Some(ROSTER.to_string()),
        mail_next_hop: Some(SocketAddr::from(([127, 0, 0, 1], free_port()))),
        mail_milter: true,
        ..TestOptions::default()
    })
    .await
    .unwrap();
    let addrs = server.addrs("mail");
    assert_eq!(addrs.len(), 2, "the relay and the milter: {addrs:?}");
    let milter = addrs[1];
    assert!(milter.ip().is_loopback());

    let mut mta = Mta::connect(milter).await;
    // It changes only what the banner needs, asks no reply to the events it never
    // refuses, and asks for the SASL login at MAIL.
    assert_eq!(mta.actions, Actions::ADD_HEADER | Actions::REPLACE_BODY);
    assert!(
        mta.opts
            .contains(ProtoOpts::NOREPLY_HEADER | ProtoOpts::NOREPLY_BODY),
        "{:?}",
        mta.opts
    );
    assert!(mta.opts.contains(ProtoOpts::LEADING_SPACE));
    assert_eq!(
        mta.macros
            .get(&MacroStage::Mail)
            .map(|m| m.to_str().unwrap()),
        Some("{auth_authen}")
    );

    // A program renamed .pdf: refused with the clause, as the relay's 550.
    let replies = mta
        .message(
            None,
            "teacher@wcs.london",
            "parent@gmail.com",
            &std::fs::read(fixture("exe-as-pdf.eml")).unwrap(),
        )
        .await;
    let text = reply_text(&replies);
    assert!(
        text.starts_with("550 5.7.1 Programs and scripts")
            && text.ends_with("[wcs 3.2.9, rule mail-executables]"),
        "{text}"
    );

    // From outside: goes on, with the banner in the body and the header on top.
    let inbound =
        b"From: parent@gmail.com\nTo: office@wcs.london\nSubject: Absence\n\nSam is ill today.\n";
    let replies = mta
        .message(None, "parent@gmail.com", "office@wcs.london", inbound)
        .await;
    assert!(
        matches!(replies.last(), Some(MilterReply::Continue)),
        "{replies:?}"
    );
    let body: Vec<u8> = replies
        .iter()
        .filter_map(|r| match r {
            MilterReply::ReplaceBody { chunk } => Some(chunk.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.starts_with("CAUTION: this email came from outside WCS")
            && body.ends_with("\r\nSam is ill today.\r\n"),
        "{body:?}"
    );
    assert!(
        replies.iter().any(|r| matches!(r,
            MilterReply::InsertHeader { index: 0, name, value }
                if name.to_str().unwrap() == "X-Hallpass-External-Sender"
                    && value.to_str().unwrap().starts_with(" CAUTION"))),
        "{replies:?}"
    );

    // A student logged in under a teacher's address, with abusive language: held in
    // the quarantine as the student, and the MTA told to drop its copy.
    let abusive =
        b"From: teacher@wcs.london\nTo: alex@wcs.london\nSubject: hey\n\nyou fucking idiot\n";
    let replies = mta
        .message(
            Some("s.student"),
            "teacher@wcs.london",
            "alex@wcs.london",
            abusive,
        )
        .await;
    assert_eq!(replies, vec![MilterReply::Discard]);
    let held = hallpass_store::testing::query_strings(
        &server.store,
        "SELECT coalesce(person, '-') || '|' || sender || '|' || status FROM mail_quarantine",
    )
    .await
    .unwrap();
    assert_eq!(held, ["s.student|teacher@wcs.london|held"]);

    // Every message is an event, as the relay's are; the login is named.
    let events = mail_events(&server).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events[0].starts_with("t.teacher|block|mail-executables|3.2.9|"),
        "{events:?}"
    );
    assert!(events[1].starts_with("-|allow|"), "{events:?}");
    assert!(
        events[2].starts_with("s.student|quarantine|mail-student-abusive-language|3.2.3|")
            && events[2].contains("\"login\":\"s.student\""),
        "{events:?}"
    );
    // The delivered one is journaled (the MTA has it queued).
    let journaled = hallpass_store::testing::query_strings(
        &server.store,
        "SELECT direction || '|' || sender FROM mail_journal",
    )
    .await;
    // The journal writes in the background: wait for it.
    let mut journaled = journaled.unwrap();
    for _ in 0..100 {
        if !journaled.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        journaled = hallpass_store::testing::query_strings(
            &server.store,
            "SELECT direction || '|' || sender FROM mail_journal",
        )
        .await
        .unwrap();
    }
    assert_eq!(journaled, ["inbound|parent@gmail.com"]);

    // Too big: refused at its end, nothing kept.
    let mut big = b"From: teacher@wcs.london\nTo: head@wcs.london\nSubject: big\n\n".to_vec();
    big.extend(
        std::iter::repeat_n(
            b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789\n"
                .as_slice(),
            26 << 20 >> 6,
        )
        .flatten(),
    );
    let replies = mta
        .message(None, "teacher@wcs.london", "head@wcs.london", &big)
        .await;
    let text = reply_text(&replies);
    assert!(text.starts_with("552 5.3.4 Message too big"), "{text}");
}
