//! Arbitrary bytes as SMTP command lines (split at line feeds) through the session
//! state machine: every line gets a reply, a 354 or a close, never a panic, and no
//! reply can carry a line break that would split it on the wire.
#![no_main]

use hallpass_mail::{Session, SessionLimits, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut session = Session::new(
        "fuzz",
        SessionLimits {
            max_message_bytes: 1 << 20,
            max_recipients: 5,
            max_errors: 50,
            tls: true,
            xforward: true,
        },
    );
    for line in data.split(|b| *b == b'\n') {
        let (reply, closing) = match session.command(line) {
            Step::Reply(r) => (r, false),
            Step::Close(r) => (r, true),
            Step::StartTls(r) => {
                session.tls_started();
                (r, false)
            }
            Step::Data => {
                let _ = session.take_envelope();
                continue;
            }
        };
        let wire = reply.to_wire();
        assert!(wire.ends_with("\r\n"));
        assert_eq!(wire.matches("\r\n").count(), reply.lines.len().max(1));
        if closing {
            break;
        }
    }
});
