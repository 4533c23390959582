//! The SASL login the school's MTA passes on. XFORWARD has no attribute for it, but
//! Postfix with `smtpd_sasl_authenticated_header = yes` writes it into the `Received:`
//! header it puts on top of each message it proxies:
//!
//! ```text
//! Received: from pc1 (pc1.wcs.london [10.1.2.3])
//!     (Authenticated sender: sam.student)
//!     by mta.wcs.london (Postfix) with ESMTPSA id 4Bc1;
//! ```
//!
//! Only that topmost header is read: anything below it came from the client, which can
//! write whatever it likes. The relay reads it only from an MTA it trusts (on this host)
//! and only when the configuration says that MTA writes it (`[mail] authenticated_header`).

/// The longest first header looked at; Postfix's is well under 1 KiB.
const MAX_FIELD: usize = 4096;
/// Postfix's comment (`smtpd.c`).
const MARK: &[u8] = b"(Authenticated sender: ";

/// The login in the message's first header field, when it is a `Received:` field with
/// Postfix's `(Authenticated sender: LOGIN)` comment.
pub fn authenticated_sender(message: &[u8]) -> Option<String> {
    let field = first_field(message)?;
    let name_end = field.iter().position(|&b| b == b':')?;
    if !field[..name_end].eq_ignore_ascii_case(b"Received") {
        return None;
    }
    let start = find(&field, MARK)? + MARK.len();
    // Postfix sanitises the login for a comment; a backslash quotes the next byte.
    let mut login = Vec::new();
    let mut bytes = field[start..].iter();
    loop {
        match *bytes.next()? {
            b')' => break,
            b'\\' => login.push(*bytes.next()?),
            b'\r' | b'\n' => return None,
            b => login.push(b),
        }
    }
    let login = String::from_utf8(login).ok()?;
    let login = login.trim();
    (!login.is_empty() && !login.contains(char::is_whitespace)).then(|| login.to_owned())
}

/// The first header field, its folded lines joined (line breaks kept out).
fn first_field(message: &[u8]) -> Option<Vec<u8>> {
    let mut field = Vec::new();
    let mut lines = message[..message.len().min(MAX_FIELD)].split(|&b| b == b'\n');
    let first = lines.next()?;
    if first.is_empty() || first.starts_with(b" ") || first.starts_with(b"\t") {
        return None;
    }
    field.extend_from_slice(first.strip_suffix(b"\r").unwrap_or(first));
    for line in lines {
        if !(line.starts_with(b" ") || line.starts_with(b"\t")) {
            break;
        }
        field.push(b' ');
        field.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line).trim_ascii_start());
    }
    Some(field)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTFIX: &[u8] = b"Received: from pc1 (pc1.wcs.london [10.1.2.3])\r\n\
        \t(Authenticated sender: sam.student)\r\n\
        \tby mta.wcs.london (Postfix) with ESMTPSA id 4Bc1\r\n\
        \tfor <alex@wcs.london>; Mon,  7 Dec 2026 09:00:00 +0000 (GMT)\r\n\
        From: head@wcs.london\r\nSubject: hi\r\n\r\nbody\r\n";

    #[test]
    fn reads_postfixs_comment_in_the_first_received_header() {
        assert_eq!(
            authenticated_sender(POSTFIX).as_deref(),
            Some("sam.student")
        );
        let bare_lf = String::from_utf8_lossy(POSTFIX).replace("\r\n", "\n");
        assert_eq!(
            authenticated_sender(bare_lf.as_bytes()).as_deref(),
            Some("sam.student")
        );
        let address = b"Received: from pc1 (pc1 [10.1.2.3]) (Authenticated sender: sam@wcs.london) by mta\r\n\r\nx";
        assert_eq!(
            authenticated_sender(address).as_deref(),
            Some("sam@wcs.london")
        );
        let quoted = b"Received: from x (Authenticated sender: o\\)brien) by mta\r\n\r\n";
        assert_eq!(authenticated_sender(quoted).as_deref(), Some("o)brien"));
    }

    #[test]
    fn anything_but_the_first_field_is_the_clients_and_ignored() {
        // The client's own forged header below the MTA's.
        let forged = b"Received: from pc1 (pc1 [10.1.2.3])\r\n\tby mta.wcs.london (Postfix)\r\n\
            Received: from x (Authenticated sender: head.teacher) by y\r\n\r\nbody";
        assert_eq!(authenticated_sender(forged), None);
        let not_received = b"X-Note: (Authenticated sender: head.teacher)\r\n\r\n";
        assert_eq!(authenticated_sender(not_received), None);
        let in_body = b"Subject: hi\r\n\r\nReceived: (Authenticated sender: head.teacher)";
        assert_eq!(authenticated_sender(in_body), None);
        for bad in [
            &b""[..],
            b"\r\n\r\nbody",
            b" Received: (Authenticated sender: a)\r\n",
            b"Received: (Authenticated sender: )\r\n",
            b"Received: (Authenticated sender: two words)\r\n",
            b"Received: (Authenticated sender: unterminated\r\n",
            b"Received: (Authenticated sender: trailing\\",
        ] {
            assert_eq!(
                authenticated_sender(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
