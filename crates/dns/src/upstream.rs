//! Forwarding to upstream resolvers. Every exchange has a UDP socket of its own, bound
//! to a port the kernel picks at random and connected to the server (as unbound does),
//! with a random ID and, by default, the question's letters in random case (0x20,
//! draft-vixie-dnsext-dns0x20): an off-path forger must guess port, ID and case, not the
//! ID alone. A reply counts only if it echoes the question exactly as sent; others are
//! dropped while the exchange waits. Also: TCP retry when a reply is truncated,
//! per-exchange timeouts, and failover through the configured servers (servers that keep
//! failing are tried last until they have rested).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::wire::{self, MAX_NAME_WIRE, ScanError, Scanned, rcode};

/// Consecutive failures after which a server is tried last...
const SICK_AFTER: u32 = 3;
/// ...for this long after its last failure.
const REST: Duration = Duration::from_secs(5);
/// Room for one UDP reply: more than the 1232 bytes we advertise; a larger datagram is
/// cut and then fails the scan.
const REPLY_ROOM: usize = 4096;

#[derive(Debug)]
pub(crate) enum UpstreamError {
    NoServers,
    Timeout,
    Io,
    Malformed,
    Rcode,
    /// The server echoed our question in other case: it does not keep 0x20 case.
    CaseChanged,
}

struct Server {
    addr: SocketAddr,
    failures: AtomicU32,
    /// Milliseconds since `Upstreams::base` of the last failure.
    last_failure_ms: AtomicU64,
}

/// wyrand over a seed from the OS-seeded `RandomState`: IDs and case bits are an
/// anti-spoofing measure against an off-path forger who never sees them, not a key.
struct Rng(AtomicU64);

impl Rng {
    fn new() -> Rng {
        Rng(AtomicU64::new(RandomState::new().hash_one(0x20u8)))
    }

    #[inline]
    fn next(&self) -> u64 {
        let s = self.0.fetch_add(0xa076_1d64_78bd_642f, Ordering::Relaxed);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    }
}

pub(crate) struct Upstreams {
    servers: Vec<Server>,
    timeout: Duration,
    udp_payload: u16,
    case_randomisation: bool,
    rng: Rng,
    metrics: Arc<Metrics>,
    clock: Clock,
    base: Instant,
}

/// Result of a successful exchange: the response, what the scan found, the latency.
pub(crate) struct Exchanged {
    pub response: Vec<u8>,
    pub scanned: Scanned,
    pub latency: Duration,
}

impl Upstreams {
    pub(crate) fn new(
        addrs: &[SocketAddr],
        timeout: Duration,
        udp_payload: u16,
        case_randomisation: bool,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> Self {
        let base = clock.instant();
        Upstreams {
            servers: addrs
                .iter()
                .map(|&addr| Server {
                    addr,
                    failures: AtomicU32::new(0),
                    last_failure_ms: AtomicU64::new(0),
                })
                .collect(),
            timeout,
            udp_payload,
            case_randomisation,
            rng: Rng::new(),
            metrics,
            clock,
            base,
        }
    }

    fn now_ms(&self) -> u64 {
        self.clock
            .instant()
            .saturating_duration_since(self.base)
            .as_millis() as u64
    }

    fn sick(&self, s: &Server, now_ms: u64) -> bool {
        s.failures.load(Ordering::Relaxed) >= SICK_AFTER
            && now_ms.saturating_sub(s.last_failure_ms.load(Ordering::Relaxed))
                < REST.as_millis() as u64
    }

    /// Asks the servers in turn (healthy ones first) until one gives a usable answer.
    pub(crate) async fn exchange(
        &self,
        name: &[u8],
        qtype: u16,
        qclass: u16,
        dnssec_ok: bool,
        checking_disabled: bool,
    ) -> Result<Exchanged, UpstreamError> {
        let ask = Ask {
            name,
            qtype,
            qclass,
            dnssec_ok,
            checking_disabled,
        };
        let now_ms = self.now_ms();
        let mut last = UpstreamError::NoServers;
        for pass_sick in [false, true] {
            for server in self
                .servers
                .iter()
                .filter(|s| self.sick(s, now_ms) == pass_sick)
            {
                Metrics::bump(&self.metrics.upstream_queries);
                let started = self.clock.instant();
                match self.ask(server.addr, &ask).await {
                    Ok((response, scanned)) => {
                        server.failures.store(0, Ordering::Relaxed);
                        let latency = self.clock.instant().saturating_duration_since(started);
                        self.metrics.upstream_latency(latency);
                        return Ok(Exchanged {
                            response,
                            scanned,
                            latency,
                        });
                    }
                    Err(e) => {
                        Metrics::bump(&self.metrics.upstream_errors);
                        server.failures.fetch_add(1, Ordering::Relaxed);
                        server
                            .last_failure_ms
                            .store(self.now_ms(), Ordering::Relaxed);
                        tracing::debug!(upstream = %server.addr, error = ?e, "upstream exchange failed");
                        last = e;
                    }
                }
            }
        }
        Err(last)
    }

    /// One server: with 0x20 case when configured, and once more without it if the
    /// server does not keep case (it still must echo the question, in any case).
    async fn ask(
        &self,
        server: SocketAddr,
        ask: &Ask<'_>,
    ) -> Result<(Vec<u8>, Scanned), UpstreamError> {
        if self.case_randomisation {
            match self.ask_once(server, ask, true).await {
                Err(UpstreamError::CaseChanged) => {
                    Metrics::bump(&self.metrics.upstream_case_fallbacks);
                    Metrics::bump(&self.metrics.upstream_queries);
                }
                other => return other,
            }
        }
        self.ask_once(server, ask, false).await
    }

    async fn ask_once(
        &self,
        server: SocketAddr,
        ask: &Ask<'_>,
        mixed_case: bool,
    ) -> Result<(Vec<u8>, Scanned), UpstreamError> {
        let id = self.rng.next() as u16;
        let mut name = [0u8; MAX_NAME_WIRE];
        let name = &mut name[..ask.name.len()];
        name.copy_from_slice(ask.name);
        if mixed_case {
            self.randomise_case(name);
        }
        let mut query = Vec::with_capacity(name.len() + 32);
        wire::build_upstream_query(
            &mut query,
            id,
            name,
            ask.qtype,
            ask.qclass,
            ask.dnssec_ok,
            ask.checking_disabled,
            self.udp_payload,
        );
        // The question exactly as sent: what a genuine reply echoes.
        let sent_question = &query[wire::HEADER_LEN..wire::HEADER_LEN + name.len() + 4];
        let socket = fresh_socket(server).await.map_err(|_| UpstreamError::Io)?;
        socket.send(&query).await.map_err(|_| UpstreamError::Io)?;
        let mut response =
            tokio::time::timeout(self.timeout, receive_reply(&socket, id, sent_question))
                .await
                .map_err(|_| UpstreamError::Timeout)??;
        drop(socket);
        lowercase_question(&mut response, ask.name);
        let mut scanned = scan(&response, id, sent_question)?;
        if scanned.truncated {
            Metrics::bump(&self.metrics.upstream_queries);
            Metrics::bump(&self.metrics.upstream_tcp_retries);
            response = tokio::time::timeout(self.timeout, tcp_exchange(server, &query))
                .await
                .map_err(|_| UpstreamError::Timeout)?
                .map_err(|_| UpstreamError::Io)?;
            check_reply(&response, id, sent_question)?;
            lowercase_question(&mut response, ask.name);
            scanned = scan(&response, id, sent_question)?;
            if scanned.truncated {
                return Err(UpstreamError::Malformed);
            }
        }
        match scanned.rcode {
            rcode::NOERROR | rcode::NXDOMAIN => {}
            _ => return Err(UpstreamError::Rcode),
        }
        if scanned.opt.is_some() && !scanned.opt_last {
            // Rare: OPT not last. Re-encode through hickory, which writes it last.
            response = normalise(&response).ok_or(UpstreamError::Malformed)?;
            scanned = scan(&response, id, sent_question)?;
            if scanned.opt.is_some() && !scanned.opt_last {
                return Err(UpstreamError::Malformed);
            }
        }
        Ok((response, scanned))
    }

    /// Upper-cases each letter of a lowercase wire name with probability one half.
    /// (Length bytes are at most 63, below every letter, so they are never touched.)
    fn randomise_case(&self, name: &mut [u8]) {
        for chunk in name.chunks_mut(64) {
            let bits = self.rng.next();
            for (i, b) in chunk.iter_mut().enumerate() {
                if b.is_ascii_lowercase() && bits >> i & 1 == 1 {
                    *b = b.to_ascii_uppercase();
                }
            }
        }
    }
}

/// The question of one exchange.
struct Ask<'a> {
    /// Lowercase wire name.
    name: &'a [u8],
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    checking_disabled: bool,
}

/// A UDP socket on a random local port, connected to `server` (so the kernel passes on
/// only the server's datagrams, and reports an ICMP refusal as an error at once).
async fn fresh_socket(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    Ok(socket)
}

/// Waits for the server's reply to `id`: datagrams with another ID or another question
/// are dropped (and the wait goes on); a question echoed in other case is
/// [`UpstreamError::CaseChanged`].
async fn receive_reply(
    socket: &UdpSocket,
    id: u16,
    sent_question: &[u8],
) -> Result<Vec<u8>, UpstreamError> {
    let mut buf = [0u8; REPLY_ROOM];
    loop {
        let n = socket.recv(&mut buf).await.map_err(|_| UpstreamError::Io)?;
        let reply = &buf[..n];
        match check_reply(reply, id, sent_question) {
            Ok(()) => return Ok(reply.to_vec()),
            Err(UpstreamError::CaseChanged) => return Err(UpstreamError::CaseChanged),
            Err(_) => {
                tracing::debug!("dropped an upstream datagram that does not answer our query");
            }
        }
    }
}

/// Writes the question name of a checked reply back in lowercase, so that the cached
/// answer (and every record name compressed to point at it) carries no 0x20 case; the
/// client's own spelling is patched in when it is served.
fn lowercase_question(reply: &mut [u8], name: &[u8]) {
    if let Some(q) = reply.get_mut(wire::HEADER_LEN..wire::HEADER_LEN + name.len()) {
        q.copy_from_slice(name);
    }
}

/// Whether `reply` answers query `id` by echoing `sent_question` byte for byte.
fn check_reply(reply: &[u8], id: u16, sent_question: &[u8]) -> Result<(), UpstreamError> {
    if reply.len() < wire::HEADER_LEN || reply[..2] != id.to_be_bytes() {
        return Err(UpstreamError::Malformed);
    }
    match reply.get(wire::HEADER_LEN..wire::HEADER_LEN + sent_question.len()) {
        Some(q) if q == sent_question => Ok(()),
        Some(q) if q.eq_ignore_ascii_case(sent_question) => Err(UpstreamError::CaseChanged),
        _ => Err(UpstreamError::Malformed),
    }
}

fn scan(response: &[u8], id: u16, question: &[u8]) -> Result<Scanned, UpstreamError> {
    wire::scan_response(response, id, question).map_err(|e| match e {
        ScanError::Mismatch | ScanError::Malformed => UpstreamError::Malformed,
    })
}

fn normalise(response: &[u8]) -> Option<Vec<u8>> {
    let msg = hickory_proto::op::Message::from_vec(response).ok()?;
    msg.to_vec().ok()
}

async fn tcp_exchange(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await?;
    let _ = stream.set_nodelay(true);
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let len = stream.read_u16().await?;
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}
