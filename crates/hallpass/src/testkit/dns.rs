//! Just enough DNS on the wire for tests: an A query from a chosen source address, its
//! answer read back, and an upstream that answers every A query with one address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::Context;

/// What came back for a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The response code (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...).
    pub rcode: u8,
    /// The A records of the answer section.
    pub addrs: Vec<Ipv4Addr>,
    /// The whole response (the EDE text, which cites the clause, is plain ASCII in it).
    pub raw: Vec<u8>,
}

impl Answer {
    /// Whether the response's bytes contain `text` (e.g. the clause an EDE cites).
    pub fn cites(&self, text: &str) -> bool {
        String::from_utf8_lossy(&self.raw).contains(text)
    }
}

/// Sends one A query for `name` over UDP from `from` (a loopback address: each one is a
/// different client) to `server`, and waits up to 3 s for the answer.
pub fn query_a(server: SocketAddr, from: IpAddr, name: &str) -> anyhow::Result<Answer> {
    let socket = UdpSocket::bind((from, 0)).with_context(|| format!("binding {from}"))?;
    socket.set_read_timeout(Some(Duration::from_secs(3)))?;
    let id: u16 = 0x4150;
    let mut query = Vec::with_capacity(64);
    query.extend_from_slice(&id.to_be_bytes());
    query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]); // RD; 1 question, 1 OPT
    encode_name(&mut query, name)?;
    query.extend_from_slice(&[0, 1, 0, 1]); // A, IN
    // OPT: root name, type 41, payload 1232, no flags, no options.
    query.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    socket.send_to(&query, server)?;
    let mut buf = vec![0u8; 4096];
    let (len, _) = socket
        .recv_from(&mut buf)
        .with_context(|| format!("no answer from {server} for {name}"))?;
    buf.truncate(len);
    parse_answer(buf)
}

fn encode_name(out: &mut Vec<u8>, name: &str) -> anyhow::Result<()> {
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|n| (1..64).contains(n));
        let len = len.with_context(|| format!("bad label in {name:?}"))?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(())
}

/// Skips a (possibly compressed) name at `at`; returns the offset after it.
fn skip_name(message: &[u8], mut at: usize) -> anyhow::Result<usize> {
    loop {
        let len = *message.get(at).context("name runs past the end")?;
        match len {
            0 => return Ok(at + 1),
            l if l & 0xc0 == 0xc0 => return Ok(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

fn u16_at(message: &[u8], at: usize) -> anyhow::Result<u16> {
    let bytes = message.get(at..at + 2).context("message too short")?;
    Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
}

fn parse_answer(raw: Vec<u8>) -> anyhow::Result<Answer> {
    anyhow::ensure!(raw.len() >= 12, "answer shorter than a header");
    let rcode = raw[3] & 0x0f;
    let (questions, answers) = (u16_at(&raw, 4)?, u16_at(&raw, 6)?);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(&raw, at)? + 4;
    }
    let mut addrs = Vec::new();
    for _ in 0..answers {
        at = skip_name(&raw, at)?;
        let (rtype, rdlen) = (u16_at(&raw, at)?, usize::from(u16_at(&raw, at + 8)?));
        let data = raw
            .get(at + 10..at + 10 + rdlen)
            .context("record past the end")?;
        if rtype == 1 && rdlen == 4 {
            addrs.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += 10 + rdlen;
    }
    Ok(Answer { rcode, addrs, raw })
}

/// An upstream on loopback that answers every A query with `answer` (TTL 300) and
/// anything else with NODATA, on its own thread for the rest of the test process.
pub fn spawn_upstream(answer: Ipv4Addr) -> anyhow::Result<SocketAddr> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let addr = socket.local_addr()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((len, peer)) = socket.recv_from(&mut buf) {
            if let Some(response) = respond(&buf[..len], answer) {
                let _ = socket.send_to(&response, peer);
            }
        }
    });
    Ok(addr)
}

fn respond(query: &[u8], answer: Ipv4Addr) -> Option<Vec<u8>> {
    if query.len() < 12 || u16_at(query, 4).ok()? != 1 {
        return None;
    }
    let end = skip_name(query, 12).ok()? + 4;
    let qtype = u16_at(query, end - 4).ok()?;
    let mut response = query.get(..end)?.to_vec();
    response[2] = 0x80 | (query[2] & 0x01); // QR, RD copied
    response[3] = 0x80; // RA, NOERROR
    response[8..12].fill(0); // no authority, no additional
    if qtype == 1 {
        response[6..8].copy_from_slice(&1u16.to_be_bytes());
        response.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4]);
        response.extend_from_slice(&answer.octets());
    } else {
        response[6..8].fill(0);
    }
    Some(response)
}
