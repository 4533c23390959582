//! The "external sender" banner: one line put at the top of the text and HTML bodies of
//! mail from outside the school, so a reader sees at once that it did not come from a
//! colleague (000 §3.4.5). The message is edited in place at the byte offsets the MIME
//! parser reports, so every other byte (headers, boundaries, attachments, signatures'
//! parts) stays as it was and the MIME stays valid. A base64 body in UTF-8 or ASCII is
//! decoded, given the line and encoded again; one in another charset, or in a charset
//! that is not ASCII-compatible, is left alone. A header marks the message either way.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_parser::{Encoding, MessageParser, MimeHeaders, PartType};

/// The header every bannered message gets (also when no body could take the line).
pub const EXTERNAL_HEADER: &str = "X-Hallpass-External-Sender";

/// `message` with `banner` (printable ASCII, one line) at the top of its readable
/// bodies and the [`EXTERNAL_HEADER`] first among its headers. `None` when the message
/// cannot be parsed (it is then forwarded unchanged).
pub fn add_banner(message: &[u8], banner: &str) -> Option<Vec<u8>> {
    let (banner, edited) = banner_edits(message, banner)?;
    let mut out = Vec::with_capacity(edited.len() + banner.len() + 64);
    out.extend_from_slice(format!("{EXTERNAL_HEADER}: {banner}\r\n").as_bytes());
    out.extend_from_slice(&edited);
    Some(out)
}

/// `message`'s body with `banner` at the top of its readable parts, for an MTA that
/// changes the header itself (the milter): the bytes after the header block ending at
/// `body_start`. `None` when the message cannot be parsed.
pub(crate) fn bannered_body(message: &[u8], body_start: usize, banner: &str) -> Option<Vec<u8>> {
    let (_, edited) = banner_edits(message, banner)?;
    // Every edit is in a body, so the header block is as it was.
    (edited.get(..body_start)? == message.get(..body_start)?).then(|| edited[body_start..].to_vec())
}

/// The banner as it is written, in the body and in [`EXTERNAL_HEADER`]: printable ASCII.
pub(crate) fn banner_line(banner: &str) -> String {
    banner
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .collect()
}

/// The banner as it is written (printable ASCII), and `message` with it put at the top
/// of its readable bodies, headers untouched.
fn banner_edits(message: &[u8], banner: &str) -> Option<(String, Vec<u8>)> {
    let banner = banner_line(banner);
    let parsed = MessageParser::default().parse(message)?;
    // (start, end, bytes to put there), applied from the end so earlier offsets stay right.
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut ids: Vec<u32> = parsed
        .text_body
        .iter()
        .chain(parsed.html_body.iter())
        .copied()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let Some(part) = parsed.parts.get(id as usize) else {
            continue;
        };
        let quoted_printable = part.encoding == Encoding::QuotedPrintable;
        let charset = part
            .content_type()
            .and_then(|ct| ct.attribute("charset"))
            .unwrap_or("us-ascii")
            .to_ascii_lowercase();
        if part.is_encoding_problem
            || ["utf-16", "utf-32", "ucs", "utf-7"]
                .iter()
                .any(|c| charset.starts_with(c))
        {
            continue;
        }
        let (start, end) = (part.offset_body as usize, part.offset_end as usize);
        if start > end || end > message.len() {
            continue;
        }
        let escape = |s: String| {
            if quoted_printable {
                s.replace('=', "=3D")
            } else {
                s
            }
        };
        let text_line = format!("{banner}\r\n\r\n");
        let html_line = format!(
            "<p style=\"border:1px solid #b45309;background:#fef3c7;padding:4px\">{}</p>\r\n",
            html_escape(&banner)
        );
        if part.encoding == Encoding::Base64 {
            // The parser decoded the body into UTF-8; only a UTF-8 or ASCII body can be
            // encoded back as the same charset.
            if !["utf-8", "utf8", "us-ascii", "ascii"].contains(&charset.as_str()) {
                continue;
            }
            let decoded = match &part.body {
                PartType::Text(t) => format!("{text_line}{t}"),
                PartType::Html(h) => {
                    let at = after_body_tag(h.as_bytes()).unwrap_or(0);
                    format!("{}{html_line}{}", &h[..at], &h[at..])
                }
                _ => continue,
            };
            let mut encoded = base64_lines(decoded.as_bytes());
            if message[start..end].ends_with(b"\n") {
                encoded.extend_from_slice(b"\r\n");
            }
            edits.push((start, end, encoded));
            continue;
        }
        match &part.body {
            PartType::Text(_) => {
                edits.push((start, start, escape(text_line).into_bytes()));
            }
            PartType::Html(_) => {
                let at = after_body_tag(&message[start..end]).map_or(start, |o| start + o);
                edits.push((at, at, escape(html_line).into_bytes()));
            }
            _ => {}
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut edited = message.to_vec();
    for (start, end, bytes) in edits {
        edited.splice(start..end, bytes);
    }
    Some((banner, edited))
}

/// `bytes` in base64, 76 characters a line (RFC 2045 §6.8), lines joined by CRLF.
fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    let encoded = BASE64.encode(bytes);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / 38);
    for (i, line) in encoded.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
    out
}

/// The offset just after `<body ...>` (case-insensitive), when there is one.
fn after_body_tag(html: &[u8]) -> Option<usize> {
    let lower = html.to_ascii_lowercase();
    let open = lower.windows(5).position(|w| w == b"<body")?;
    let close = lower[open..].iter().position(|b| *b == b'>')?;
    let mut at = open + close + 1;
    // After the tag's line end, so the line holding the tag stays as it was.
    if html[at..].starts_with(b"\r\n") {
        at += 2;
    }
    Some(at)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BANNER: &str = "CAUTION: from outside WCS <check> a=b";

    fn bodies(message: &[u8]) -> (Vec<String>, Vec<String>) {
        let parsed = MessageParser::default().parse(message).unwrap();
        let texts = (0..parsed.text_body.len())
            .filter_map(|i| parsed.body_text(i).map(|t| t.into_owned()))
            .collect();
        let htmls = (0..parsed.html_body.len())
            .filter_map(|i| parsed.body_html(i).map(|t| t.into_owned()))
            .collect();
        (texts, htmls)
    }

    #[test]
    fn a_plain_message_gets_the_line_first() {
        let m = b"From: a@x.example\r\nSubject: Hi\r\n\r\nHello there.\r\n";
        let out = add_banner(m, BANNER).unwrap();
        let (texts, _) = bodies(&out);
        assert_eq!(texts[0], format!("{BANNER}\r\n\r\nHello there.\r\n"));
        assert!(out.starts_with(format!("{EXTERNAL_HEADER}: {BANNER}\r\n").as_bytes()));
    }

    #[test]
    fn alternative_parts_and_quoted_printable_stay_valid() {
        let m = b"From: a@x.example\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Caf=C3=A9 at ten.\r\n\
--b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
<html><body class=3D\"x\">\r\n<p>Caf=C3=A9 at ten.</p></body></html>\r\n\
--b1\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
AAECAw==\r\n--b1--\r\n";
        let out = add_banner(m, BANNER).unwrap();
        let (texts, htmls) = bodies(&out);
        // The line end before the boundary belongs to the boundary.
        assert_eq!(texts[0], format!("{BANNER}\r\n\r\nCafé at ten."));
        let html = &htmls[0];
        let banner_at = html
            .find("CAUTION: from outside WCS &lt;check&gt; a=b")
            .unwrap();
        assert!(html.find("<body").unwrap() < banner_at, "{html}");
        assert!(banner_at < html.find("Café").unwrap(), "{html}");
        // The attachment is byte for byte the same.
        let parsed = MessageParser::default().parse(&out[..]).unwrap();
        assert_eq!(parsed.attachment(0).unwrap().contents(), [0, 1, 2, 3]);
    }

    #[test]
    fn base64_bodies_are_encoded_again_unless_their_charset_cannot_be() {
        let long = "Saturday at ten. ".repeat(20);
        let m = format!(
            "From: a@x.example\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            String::from_utf8(base64_lines(
                format!("<html><body><p>{long}</p></body></html>").as_bytes()
            ))
            .unwrap()
        );
        let out = add_banner(m.as_bytes(), BANNER).unwrap();
        let (_, htmls) = bodies(&out);
        assert_eq!(
            htmls[0],
            format!(
                "<html><body><p style=\"border:1px solid #b45309;background:#fef3c7;padding:4px\">CAUTION: from outside WCS &lt;check&gt; a=b</p>\r\n<p>{long}</p></body></html>"
            )
        );
        assert!(
            String::from_utf8_lossy(&out)
                .lines()
                .all(|l| l.len() <= 998),
            "lines stay short"
        );
        let latin = b"From: a@x.example\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\nQ2Fm6Q==\r\n";
        let out = add_banner(latin, BANNER).unwrap();
        let (texts, _) = bodies(&out);
        assert_eq!(texts[0], "Café");
        assert!(out.starts_with(EXTERNAL_HEADER.as_bytes()));
    }
}
