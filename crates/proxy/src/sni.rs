//! The server name a TLS client asks for (pure): peeked from the ClientHello that opens a
//! `CONNECT` tunnel, to compare with the host the tunnel was allowed for. A client that
//! asks the proxy for an allowed host and then the TLS server (a CDN front serving many
//! names) for another is dodging the filter ("domain fronting"); the mismatch is refused.
//!
//! Only what is needed is read: TLS records of type handshake (RFC 8446 §5.1), the first
//! handshake message if it is a ClientHello (§4.1.2), and its server_name extension
//! (RFC 6066 §3). Every length is checked against what is there; nothing here panics.

/// Longest ClientHello the proxy waits for (a post-quantum key share makes it 1.5-2 KiB;
/// the handshake message may span records up to this).
pub const MAX_HELLO_BYTES: usize = 16 * 1024;

/// What the first bytes of a tunnel are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// Not TLS (plain HTTP through `CONNECT`, another protocol).
    NotTls,
    /// TLS so far, but the ClientHello is not complete yet: read more.
    Incomplete,
    /// A complete ClientHello, with its server name when it sends one.
    ClientHello { server_name: Option<String> },
    /// TLS records that do not hold a well-formed ClientHello.
    Malformed,
}

/// Looks at the bytes a client sent first in a tunnel.
pub fn peek(buf: &[u8]) -> Peek {
    // Reassemble the handshake bytes from consecutive handshake records.
    let mut handshake = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let Some(header) = buf.get(at..at + 5) else {
            return if header_plausible(&buf[at..]) {
                Peek::Incomplete
            } else {
                Peek::NotTls
            };
        };
        if header[0] != 0x16 || header[1] != 0x03 {
            return if at == 0 {
                Peek::NotTls
            } else {
                Peek::Malformed
            };
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let Some(fragment) = buf.get(at + 5..at + 5 + len) else {
            handshake.extend_from_slice(&buf[at + 5..]);
            return match hello_length(&handshake) {
                Some(Err(())) => Peek::Malformed,
                _ => Peek::Incomplete,
            };
        };
        handshake.extend_from_slice(fragment);
        at += 5 + len;
        match hello_length(&handshake) {
            Some(Ok(total)) if handshake.len() >= total => {
                return parse_hello(&handshake[4..total]);
            }
            Some(Err(())) => return Peek::Malformed,
            _ => {}
        }
    }
    Peek::Incomplete
}

/// The first bytes of a record header, as far as they go.
fn header_plausible(start: &[u8]) -> bool {
    matches!(start, [] | [0x16] | [0x16, 0x03, ..])
}

/// The whole ClientHello message's length (with its 4-byte header), once known;
/// `Err` when the first message is not a ClientHello or is too long to wait for.
fn hello_length(handshake: &[u8]) -> Option<Result<usize, ()>> {
    let header = handshake.get(..4)?;
    if header[0] != 0x01 {
        return Some(Err(()));
    }
    let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    if len + 4 > MAX_HELLO_BYTES {
        return Some(Err(()));
    }
    Some(Ok(len + 4))
}

/// A cursor over a ClientHello body; every read checks the length.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.buf.split_at_checked(n)?;
        self.buf = rest;
        Some(taken)
    }

    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| usize::from(b[0]))
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
}

fn parse_hello(body: &[u8]) -> Peek {
    match server_name(body) {
        Some(server_name) => Peek::ClientHello { server_name },
        None => Peek::Malformed,
    }
}

/// `Some(None)`: a well-formed ClientHello without a server name.
fn server_name(body: &[u8]) -> Option<Option<String>> {
    let mut r = Reader { buf: body };
    r.take(2 + 32)?; // legacy_version, random
    let session = r.u8()?;
    r.take(session)?;
    let suites = r.u16()?;
    r.take(suites)?;
    let compression = r.u8()?;
    r.take(compression)?;
    if r.buf.is_empty() {
        return Some(None); // no extensions at all
    }
    let extensions_len = r.u16()?;
    let mut extensions = Reader {
        buf: r.take(extensions_len)?,
    };
    while !extensions.buf.is_empty() {
        let kind = extensions.u16()?;
        let len = extensions.u16()?;
        let data = extensions.take(len)?;
        if kind != 0 {
            continue;
        }
        let mut list = Reader { buf: data };
        let list_len = list.u16()?;
        let mut names = Reader {
            buf: list.take(list_len)?,
        };
        while !names.buf.is_empty() {
            let name_type = names.u8()?;
            let name_len = names.u16()?;
            let name = names.take(name_len)?;
            if name_type == 0 {
                let name = std::str::from_utf8(name).ok()?;
                return Some(Some(name.trim_end_matches('.').to_ascii_lowercase()));
            }
        }
        return Some(None);
    }
    Some(None)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A ClientHello for `name` (no SNI when `None`), as one TLS record.
    pub(crate) fn client_hello(name: Option<&str>) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7u8; 32]); // random
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // null compression
        let mut extensions = Vec::new();
        // A supported_versions extension first, so the parser must skip one.
        extensions.extend_from_slice(&[0, 43, 0, 3, 2, 3, 4]);
        if let Some(name) = name {
            let n = name.len();
            let mut sni = Vec::new();
            sni.extend_from_slice(&u16::try_from(n + 3).unwrap().to_be_bytes());
            sni.push(0);
            sni.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
            sni.extend_from_slice(name.as_bytes());
            extensions.extend_from_slice(&[0, 0]);
            extensions.extend_from_slice(&u16::try_from(sni.len()).unwrap().to_be_bytes());
            extensions.extend_from_slice(&sni);
        }
        body.extend_from_slice(&u16::try_from(extensions.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&extensions);
        let mut handshake = vec![1];
        handshake.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
        handshake.extend_from_slice(&body);
        record(&handshake)
    }

    fn record(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x16, 0x03, 0x01];
        out.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn server_names() {
        let hello = client_hello(Some("WWW.Example.com."));
        assert_eq!(
            peek(&hello),
            Peek::ClientHello {
                server_name: Some("www.example.com".into())
            }
        );
        assert_eq!(
            peek(&client_hello(None)),
            Peek::ClientHello { server_name: None }
        );
    }

    #[test]
    fn partial_fragmented_and_foreign_input() {
        let hello = client_hello(Some("a.test"));
        for cut in [0, 1, 3, 5, 9, hello.len() - 1] {
            assert_eq!(peek(&hello[..cut]), Peek::Incomplete, "cut at {cut}");
        }
        // The same handshake split over two records.
        let payload = &hello[5..];
        let mut split = record(&payload[..10]);
        split.extend_from_slice(&record(&payload[10..]));
        assert_eq!(
            peek(&split),
            Peek::ClientHello {
                server_name: Some("a.test".into())
            }
        );
        assert_eq!(peek(b"GET / HTTP/1.1\r\n"), Peek::NotTls);
        assert_eq!(peek(b"SSH-2.0-OpenSSH"), Peek::NotTls);
        // A handshake record that is not a ClientHello, and one that lies about lengths.
        assert_eq!(peek(&record(&[2, 0, 0, 1, 0])), Peek::Malformed);
        let mut lying = hello.clone();
        lying[5 + 4 + 34] = 200; // session id length past the end
        assert_eq!(peek(&lying), Peek::Malformed);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = peek(&bytes);
        }

        #[test]
        fn never_panics_on_damaged_hellos(at in 0usize..80, value in proptest::num::u8::ANY) {
            let mut hello = client_hello(Some("x.example"));
            let at = at % hello.len();
            hello[at] = value;
            let _ = peek(&hello);
        }
    }
}
