//! DNS wire format on the hot path: a small hand parser for queries, writers for the
//! responses this crate synthesises, and a scanner for upstream responses that finds the
//! TTL fields so cached answers can be served by patching bytes.
//!
//! Everything here works on byte slices and fixed-size stack buffers; nothing allocates
//! except the `Vec<u8>` output buffers the caller owns and reuses. hickory-proto is used
//! elsewhere for the rare paths (safe search synthesis, normalising odd upstream replies).

use std::ops::Range;

/// Length of the fixed DNS header.
pub const HEADER_LEN: usize = 12;
/// Maximum length of a domain name in wire format (RFC 1035 §2.3.4).
pub const MAX_NAME_WIRE: usize = 255;

/// Record type numbers used in this crate.
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const AAAA: u16 = 28;
    pub const OPT: u16 = 41;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const MAILB: u16 = 253;
    pub const MAILA: u16 = 254;
}

/// Response codes (the low four bits, plus the extended ones we emit).
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const BADVERS: u16 = 16;
}

/// Header flag bits (in the 16-bit flags word).
pub mod flag {
    pub const QR: u16 = 0x8000;
    pub const OPCODE_MASK: u16 = 0x7800;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const AD: u16 = 0x0020;
    pub const CD: u16 = 0x0010;
    pub const RCODE_MASK: u16 = 0x000f;
}

/// EDNS(0) DO bit within the OPT TTL's flags half.
const EDNS_DO: u16 = 0x8000;
/// EDNS option code of Extended DNS Errors (RFC 8914).
pub const EDNS_OPTION_EDE: u16 = 15;

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

#[inline]
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// A domain name in lowercase wire format, on the stack.
#[derive(Clone)]
pub struct NameBuf {
    len: u16,
    buf: [u8; MAX_NAME_WIRE],
}

impl NameBuf {
    /// The root name.
    pub fn root() -> Self {
        NameBuf {
            len: 1,
            buf: [0; MAX_NAME_WIRE],
        }
    }

    /// The wire bytes, ending with the root label.
    #[inline]
    pub fn wire(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// Builds a lowercase wire name from presentation text (`www.example.com`, with or
    /// without the trailing dot). Escapes are not interpreted: this is for the host names
    /// this crate itself produces (safe-search targets). `None` for an invalid name.
    pub fn from_text(text: &str) -> Option<Self> {
        let text = text.strip_suffix('.').unwrap_or(text);
        let mut n = NameBuf::root();
        if text.is_empty() {
            return Some(n);
        }
        let mut at = 0usize;
        for label in text.split('.') {
            let l = label.len();
            if l == 0 || l > 63 || at + 1 + l + 1 > MAX_NAME_WIRE {
                return None;
            }
            n.buf[at] = l as u8; // l <= 63 checked above
            for (i, b) in label.bytes().enumerate() {
                n.buf[at + 1 + i] = b.to_ascii_lowercase();
            }
            at += 1 + l;
        }
        n.buf[at] = 0;
        n.len = (at + 1) as u16; // at + 1 <= 255 checked above
        Some(n)
    }

    /// Writes the name in presentation form (lowercase, no trailing dot; the root is the
    /// empty string) into `out`. Bytes outside printable ASCII, dots and backslashes inside
    /// labels are escaped as `\DDD` so the text is always valid UTF-8 and unambiguous.
    pub fn to_text<'a>(&self, out: &'a mut TextBuf) -> &'a str {
        let mut w = 0usize;
        let wire = self.wire();
        let mut at = 0usize;
        while let Some(&len) = wire.get(at) {
            if len == 0 {
                break;
            }
            if at != 0 {
                out.buf[w] = b'.';
                w += 1;
            }
            let label = &wire[at + 1..at + 1 + usize::from(len)];
            for &b in label {
                if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                    out.buf[w] = b;
                    w += 1;
                } else {
                    out.buf[w] = b'\\';
                    out.buf[w + 1] = b'0' + b / 100;
                    out.buf[w + 2] = b'0' + (b / 10) % 10;
                    out.buf[w + 3] = b'0' + b % 10;
                    w += 4;
                }
            }
            at += 1 + usize::from(len);
        }
        // Every byte written above is ASCII, so this cannot fail; fall back to "" anyway.
        std::str::from_utf8(&out.buf[..w]).unwrap_or("")
    }
}

/// Stack buffer for a name's presentation text (worst case: every byte escaped).
pub struct TextBuf {
    buf: [u8; MAX_NAME_WIRE * 4],
}

impl Default for TextBuf {
    fn default() -> Self {
        TextBuf {
            buf: [0; MAX_NAME_WIRE * 4],
        }
    }
}

/// The EDNS(0) parameters a client sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientEdns {
    /// Advertised UDP payload size (the OPT record's CLASS).
    pub udp_size: u16,
    /// The DNSSEC OK bit.
    pub dnssec_ok: bool,
    /// EDNS version (only 0 is supported; others are answered BADVERS).
    pub version: u8,
}

/// A parsed query. Borrows the packet it came from.
pub struct Query<'a> {
    pub packet: &'a [u8],
    pub id: u16,
    pub flags: u16,
    /// Byte range of the question section (name + type + class) inside `packet`.
    pub question: Range<usize>,
    /// The question name, lowercased.
    pub name: NameBuf,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<ClientEdns>,
}

impl Query<'_> {
    #[inline]
    pub fn dnssec_ok(&self) -> bool {
        self.edns.is_some_and(|e| e.dnssec_ok)
    }
    #[inline]
    pub fn checking_disabled(&self) -> bool {
        self.flags & flag::CD != 0
    }
}

/// Why a packet could not be handled as a query.
#[derive(Debug, PartialEq, Eq)]
pub enum Reject {
    /// Not even a header, or a response: drop silently.
    Drop,
    /// Answer with this rcode, echoing the header (and question, when one was parsed).
    Answer { id: u16, flags: u16, rcode: u16 },
}

/// Skips a (possibly compressed) name starting at `at`, returning the offset just past it.
#[inline]
fn skip_name(b: &[u8], mut at: usize) -> Option<usize> {
    let mut hops = 0;
    loop {
        let len = *b.get(at)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Some(at + 1);
                }
                at += 1 + usize::from(len);
                hops += 1;
                if hops > 128 {
                    return None;
                }
            }
            0xc0 => {
                b.get(at + 1)?;
                return Some(at + 2);
            }
            _ => return None,
        }
    }
}

/// Parses a query. Only the header, question and additional section are examined; the
/// question name must not be compressed (no client compresses the first name).
pub fn parse_query(packet: &[u8]) -> Result<Query<'_>, Reject> {
    if packet.len() < HEADER_LEN {
        return Err(Reject::Drop);
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    if flags & flag::QR != 0 {
        return Err(Reject::Drop);
    }
    let formerr = Reject::Answer {
        id,
        flags,
        rcode: rcode::FORMERR,
    };
    if flags & flag::OPCODE_MASK != 0 {
        return Err(Reject::Answer {
            id,
            flags,
            rcode: rcode::NOTIMP,
        });
    }
    let qdcount = u16::from_be_bytes([packet[4], packet[5]]);
    let ancount = u16::from_be_bytes([packet[6], packet[7]]);
    let nscount = u16::from_be_bytes([packet[8], packet[9]]);
    let arcount = u16::from_be_bytes([packet[10], packet[11]]);
    if qdcount != 1 || ancount != 0 || nscount != 0 {
        return Err(formerr);
    }

    // Question name, lowercased into a stack buffer.
    let mut name = NameBuf::root();
    let mut at = HEADER_LEN;
    let mut w = 0usize;
    loop {
        let Some(&len) = packet.get(at) else {
            return Err(formerr);
        };
        if len == 0 {
            name.buf[w] = 0;
            w += 1;
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return Err(formerr);
        }
        let l = usize::from(len);
        if w + 1 + l + 1 > MAX_NAME_WIRE {
            return Err(formerr);
        }
        let Some(label) = packet.get(at + 1..at + 1 + l) else {
            return Err(formerr);
        };
        name.buf[w] = len;
        for (i, &b) in label.iter().enumerate() {
            name.buf[w + 1 + i] = b.to_ascii_lowercase();
        }
        w += 1 + l;
        at += 1 + l;
    }
    name.len = w as u16; // w <= 255 checked in the loop
    let (Some(qtype), Some(qclass)) = (be16(packet, at), be16(packet, at + 2)) else {
        return Err(formerr);
    };
    let question = HEADER_LEN..at + 4;
    at += 4;

    // Additional section: find the OPT record, skip anything else (e.g. TSIG, cookies).
    let mut edns = None;
    for _ in 0..arcount {
        let Some(after_name) = skip_name(packet, at) else {
            return Err(formerr);
        };
        let (Some(ty), Some(class), Some(ttl), Some(rdlen)) = (
            be16(packet, after_name),
            be16(packet, after_name + 2),
            be32(packet, after_name + 4),
            be16(packet, after_name + 8),
        ) else {
            return Err(formerr);
        };
        let end = after_name + 10 + usize::from(rdlen);
        if end > packet.len() {
            return Err(formerr);
        }
        if ty == rtype::OPT {
            // RFC 6891 §6.1.1: one OPT, owned by the root.
            if edns.is_some() || packet[at] != 0 {
                return Err(formerr);
            }
            edns = Some(ClientEdns {
                udp_size: class,
                dnssec_ok: (ttl as u16) & EDNS_DO != 0,
                version: (ttl >> 16) as u8,
            });
        }
        at = end;
    }

    Ok(Query {
        packet,
        id,
        flags,
        question,
        name,
        qtype,
        qclass,
        edns,
    })
}

/// Response header flags for an answer to `query_flags`: QR, RA, and the client's RD and CD.
#[inline]
pub fn response_flags(query_flags: u16, rcode: u16) -> u16 {
    flag::QR | flag::RA | (query_flags & (flag::RD | flag::CD)) | (rcode & flag::RCODE_MASK)
}

#[inline]
fn put16(out: &mut [u8], at: usize, v: u16) {
    out[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Sets the four section counts of the message in `out`.
#[inline]
pub fn set_counts(out: &mut [u8], qd: u16, an: u16, ns: u16, ar: u16) {
    put16(out, 4, qd);
    put16(out, 6, an);
    put16(out, 8, ns);
    put16(out, 10, ar);
}

/// Starts a synthesised response to `q`: header (counts filled in later by
/// [`set_counts`]) and the question exactly as the client sent it.
pub fn begin_response(out: &mut Vec<u8>, q: &Query<'_>, rcode: u16) {
    out.clear();
    out.extend_from_slice(&q.id.to_be_bytes());
    out.extend_from_slice(&response_flags(q.flags, rcode).to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&q.packet[q.question.clone()]);
}

/// Appends a record owned by the question name (a compression pointer to offset 12).
pub fn push_rr_qname(out: &mut Vec<u8>, ty: u16, ttl: u32, rdata: &[u8]) {
    out.extend_from_slice(&[0xc0, 0x0c]);
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// Appends the synthetic SOA used in negative block answers (owner: the question name).
/// `ttl` is both the record TTL and the SOA MINIMUM, so downstream negative caching
/// (RFC 2308: min of the two) lasts exactly the block TTL.
pub fn push_block_soa(out: &mut Vec<u8>, ttl: u32) {
    // mname "hallpass.invalid.", rname "hostmaster.hallpass.invalid."
    const MNAME: &[u8] = b"\x08hallpass\x07invalid\x00";
    const RNAME: &[u8] = b"\x0ahostmaster\x08hallpass\x07invalid\x00";
    let mut rdata = [0u8; MNAME.len() + RNAME.len() + 20];
    rdata[..MNAME.len()].copy_from_slice(MNAME);
    rdata[MNAME.len()..MNAME.len() + RNAME.len()].copy_from_slice(RNAME);
    let nums = MNAME.len() + RNAME.len();
    for (i, v) in [1u32, 3600, 600, 86400, ttl].iter().enumerate() {
        rdata[nums + i * 4..nums + i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    push_rr_qname(out, rtype::SOA, ttl, &rdata);
}

/// Appends an OPT record: our UDP size, the extended rcode's high bits, the DO bit
/// echoed (RFC 3225), and optionally an Extended DNS Error (RFC 8914).
pub fn push_opt(
    out: &mut Vec<u8>,
    udp_size: u16,
    rcode: u16,
    dnssec_ok: bool,
    ede: Option<(u16, &str)>,
) {
    out.push(0);
    out.extend_from_slice(&rtype::OPT.to_be_bytes());
    out.extend_from_slice(&udp_size.to_be_bytes());
    out.push((rcode >> 4) as u8);
    out.push(0); // version 0
    out.extend_from_slice(&(if dnssec_ok { EDNS_DO } else { 0 }).to_be_bytes());
    match ede {
        Some((code, text)) => {
            // The option must fit in the 16-bit RDLENGTH with its 6 bytes of framing.
            let text = truncate_utf8(text, 1024);
            let optlen = 2 + text.len();
            out.extend_from_slice(&((4 + optlen) as u16).to_be_bytes());
            out.extend_from_slice(&EDNS_OPTION_EDE.to_be_bytes());
            out.extend_from_slice(&(optlen as u16).to_be_bytes());
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        None => out.extend_from_slice(&0u16.to_be_bytes()),
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Writes a header-only (plus question, when known) error response.
pub fn write_error(out: &mut Vec<u8>, id: u16, query_flags: u16, rcode: u16) {
    out.clear();
    out.extend_from_slice(&id.to_be_bytes());
    // Keep the opcode so NOTIMP answers say which opcode was not implemented.
    let flags = response_flags(query_flags, rcode) | (query_flags & flag::OPCODE_MASK);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
}

/// Rewrites a too-large UDP response in `out` into a truncated one: header with TC,
/// the question, and the OPT record if the client used EDNS (RFC 6891 §7).
pub fn truncate_response(out: &mut Vec<u8>, q: &Query<'_>, udp_size: u16) {
    let qend = HEADER_LEN + q.question.len();
    out.truncate(qend);
    let flags = u16::from_be_bytes([out[2], out[3]]) | flag::TC;
    put16(out, 2, flags);
    let rc = flags & flag::RCODE_MASK;
    if let Some(e) = q.edns {
        push_opt(out, udp_size, rc, e.dnssec_ok, None);
        set_counts(out, 1, 0, 0, 1);
    } else {
        set_counts(out, 1, 0, 0, 0);
    }
}

/// Builds the query we send upstream: a fresh ID, RD, the client's CD bit, the question
/// in lowercase, and EDNS(0) advertising `udp_size` with the client's DO bit.
#[allow(clippy::too_many_arguments)]
pub fn build_upstream_query(
    out: &mut Vec<u8>,
    id: u16,
    name: &[u8],
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    checking_disabled: bool,
    udp_size: u16,
) {
    out.clear();
    out.extend_from_slice(&id.to_be_bytes());
    let mut flags = flag::RD;
    if checking_disabled {
        flags |= flag::CD;
    }
    if dnssec_ok {
        flags |= flag::AD; // RFC 6840 §5.7: ask for the AD bit
    }
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1]);
    out.extend_from_slice(name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&qclass.to_be_bytes());
    push_opt(out, udp_size, 0, dnssec_ok, None);
}

/// What [`scan_response`] learned about an upstream response.
#[derive(Debug)]
pub struct Scanned {
    /// Full rcode (low four bits plus the OPT's extended bits).
    pub rcode: u16,
    pub truncated: bool,
    /// Offsets of every TTL field except the OPT record's, with the TTL found there.
    pub ttls: Vec<(u32, u32)>,
    /// Minimum TTL over the answer section (None when it is empty).
    pub answer_min_ttl: Option<u32>,
    /// RFC 2308 negative TTL: min(SOA TTL, SOA MINIMUM) of the first SOA in authority.
    pub negative_ttl: Option<u32>,
    pub answer_count: u16,
    /// Byte range of the OPT record, if any.
    pub opt: Option<Range<usize>>,
    /// True when the OPT record is the last record of the message.
    pub opt_last: bool,
}

/// Why an upstream response was not acceptable.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanError {
    /// Not an answer to the query we sent (ID, question or QR mismatch): ignore it.
    Mismatch,
    /// Structurally broken.
    Malformed,
}

/// Checks that `resp` answers `id` / `question` (lowercase wire name + type + class) and
/// walks every record.
pub fn scan_response(resp: &[u8], id: u16, question: &[u8]) -> Result<Scanned, ScanError> {
    if resp.len() < HEADER_LEN {
        return Err(ScanError::Malformed);
    }
    let rid = u16::from_be_bytes([resp[0], resp[1]]);
    let flags = u16::from_be_bytes([resp[2], resp[3]]);
    if rid != id || flags & flag::QR == 0 {
        return Err(ScanError::Mismatch);
    }
    let qd = u16::from_be_bytes([resp[4], resp[5]]);
    let an = u16::from_be_bytes([resp[6], resp[7]]);
    let ns = u16::from_be_bytes([resp[8], resp[9]]);
    let ar = u16::from_be_bytes([resp[10], resp[11]]);
    let truncated = flags & flag::TC != 0;
    if qd != 1 {
        // A truncated reply may legitimately carry nothing; anything else is not ours.
        return Err(ScanError::Mismatch);
    }
    let qend = HEADER_LEN + question.len();
    match resp.get(HEADER_LEN..qend) {
        Some(q) if q.eq_ignore_ascii_case(question) => {}
        _ => return Err(ScanError::Mismatch),
    }
    let mut s = Scanned {
        rcode: flags & flag::RCODE_MASK,
        truncated,
        ttls: Vec::with_capacity(usize::from(an) + usize::from(ns) + usize::from(ar)),
        answer_min_ttl: None,
        negative_ttl: None,
        answer_count: an,
        opt: None,
        opt_last: false,
    };
    let mut at = qend;
    let total = u32::from(an) + u32::from(ns) + u32::from(ar);
    for i in 0..total {
        let start = at;
        let after_name = skip_name(resp, at).ok_or(ScanError::Malformed)?;
        let (Some(ty), Some(ttl), Some(rdlen)) = (
            be16(resp, after_name),
            be32(resp, after_name + 4),
            be16(resp, after_name + 8),
        ) else {
            return Err(ScanError::Malformed);
        };
        let rdata = after_name + 10;
        let end = rdata + usize::from(rdlen);
        if end > resp.len() {
            return Err(ScanError::Malformed);
        }
        let in_answer = i < u32::from(an);
        let in_authority = !in_answer && i < u32::from(an) + u32::from(ns);
        if ty == rtype::OPT {
            if in_answer || in_authority || s.opt.is_some() {
                return Err(ScanError::Malformed);
            }
            s.rcode |= u16::from((ttl >> 24) as u8) << 4;
            s.opt = Some(start..end);
            s.opt_last = i + 1 == total;
        } else {
            // TTLs with the top bit set are treated as 0 (RFC 2181 §8).
            let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
            s.ttls.push(((after_name + 4) as u32, ttl));
            if in_answer {
                s.answer_min_ttl = Some(s.answer_min_ttl.map_or(ttl, |m| m.min(ttl)));
            } else if in_authority && ty == rtype::SOA && s.negative_ttl.is_none() && rdlen >= 22 {
                let minimum = be32(resp, end - 4).ok_or(ScanError::Malformed)?;
                s.negative_ttl = Some(ttl.min(minimum));
            }
        }
        at = end;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn query(name: &str, qtype: u16, edns: bool) -> Vec<u8> {
        let n = NameBuf::from_text(name).unwrap();
        let mut out = Vec::new();
        build_upstream_query(&mut out, 0x1234, n.wire(), qtype, 1, true, false, 1232);
        if !edns {
            out.truncate(out.len() - 11);
            out[11] = 0;
        }
        out
    }

    #[test]
    fn parse_and_text() {
        let p = query("WWW.Example.COM", rtype::A, true);
        let q = parse_query(&p).unwrap();
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.qtype, rtype::A);
        assert_eq!(q.name.wire(), b"\x03www\x07example\x03com\x00");
        assert!(q.dnssec_ok());
        assert_eq!(q.edns.unwrap().udp_size, 1232);
        let mut t = TextBuf::default();
        assert_eq!(q.name.to_text(&mut t), "www.example.com");
        let p = query("example.org", rtype::AAAA, false);
        let q = parse_query(&p).unwrap();
        assert!(q.edns.is_none());
    }

    #[test]
    fn escapes_odd_bytes() {
        let n = NameBuf {
            len: 5,
            buf: {
                let mut b = [0u8; MAX_NAME_WIRE];
                b[..5].copy_from_slice(b"\x03a.\xff\x00");
                b
            },
        };
        let mut t = TextBuf::default();
        assert_eq!(n.to_text(&mut t), "a\\046\\255");
        assert_eq!(NameBuf::root().to_text(&mut t), "");
    }

    #[test]
    fn rejects() {
        assert_eq!(parse_query(&[0; 5]).err(), Some(Reject::Drop));
        let mut p = query("a.b", 1, false);
        p[2] |= 0x80;
        assert_eq!(parse_query(&p).err(), Some(Reject::Drop));
        let mut p = query("a.b", 1, false);
        p[2] |= 0x28; // opcode 5
        assert!(matches!(
            parse_query(&p),
            Err(Reject::Answer {
                rcode: rcode::NOTIMP,
                ..
            })
        ));
        let mut p = query("a.b", 1, false);
        p[5] = 2;
        assert!(matches!(
            parse_query(&p),
            Err(Reject::Answer {
                rcode: rcode::FORMERR,
                ..
            })
        ));
        let p = query("a.b", 1, false);
        assert!(matches!(
            parse_query(&p[..p.len() - 1]),
            Err(Reject::Answer {
                rcode: rcode::FORMERR,
                ..
            })
        ));
    }
}
