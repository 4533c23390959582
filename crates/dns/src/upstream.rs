//! Forwarding to upstream resolvers: a small pool of UDP sockets whose replies are
//! matched to waiting queries by (ID, source address), TCP retry when a reply is
//! truncated, per-exchange timeouts, and failover through the configured servers
//! (servers that keep failing are tried last until they have rested).

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::wire::{self, ScanError, Scanned, rcode};

/// Consecutive failures after which a server is tried last...
const SICK_AFTER: u32 = 3;
/// ...for this long after its last failure.
const REST: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) enum UpstreamError {
    NoServers,
    Timeout,
    Io,
    Malformed,
    Rcode,
}

struct Server {
    addr: SocketAddr,
    failures: AtomicU32,
    /// Milliseconds since `Upstreams::base` of the last failure.
    last_failure_ms: AtomicU64,
}

struct Slot {
    from: SocketAddr,
    tx: oneshot::Sender<Vec<u8>>,
}

struct Channel {
    socket: UdpSocket,
    pending: Mutex<HashMap<u16, Slot>>,
    rng: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Channel {
    /// A random 16-bit ID not currently pending on this socket (wyrand over a seed from
    /// the OS-seeded `RandomState`; IDs are an anti-spoofing measure, not a secret key).
    fn register(&self, from: SocketAddr, tx: oneshot::Sender<Vec<u8>>) -> Option<u16> {
        let mut pending = lock(&self.pending);
        if pending.len() > 60_000 {
            return None;
        }
        loop {
            let s = self.rng.fetch_add(0xa076_1d64_78bd_642f, Ordering::Relaxed);
            let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
            let id = ((t >> 64) ^ t) as u16;
            if let std::collections::hash_map::Entry::Vacant(e) = pending.entry(id) {
                e.insert(Slot { from, tx });
                return Some(id);
            }
        }
    }

    async fn read_loop(self: Arc<Self>) {
        let mut buf = vec![0u8; 65_535];
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!("upstream socket receive error: {e}");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            };
            if n < wire::HEADER_LEN {
                continue;
            }
            let id = u16::from_be_bytes([buf[0], buf[1]]);
            let slot = {
                let mut pending = lock(&self.pending);
                match pending.get(&id) {
                    Some(s) if s.from == from => pending.remove(&id),
                    _ => None,
                }
            };
            if let Some(slot) = slot {
                let _ = slot.tx.send(buf[..n].to_vec());
            }
        }
    }
}

/// Removes a pending slot if the waiting future is dropped or times out.
struct SlotGuard<'a> {
    channel: &'a Channel,
    id: u16,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        lock(&self.channel.pending).remove(&self.id);
    }
}

pub(crate) struct Upstreams {
    servers: Vec<Server>,
    v4: Vec<Arc<Channel>>,
    v6: Vec<Arc<Channel>>,
    next: AtomicUsize,
    timeout: Duration,
    udp_payload: u16,
    metrics: Arc<Metrics>,
    clock: Clock,
    base: Instant,
    readers: Vec<JoinHandle<()>>,
}

impl Drop for Upstreams {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

async fn bind_channel(local: SocketAddr) -> std::io::Result<Arc<Channel>> {
    let socket = UdpSocket::bind(local).await?;
    let sock = socket2::SockRef::from(&socket);
    let _ = sock.set_recv_buffer_size(4 << 20);
    Ok(Arc::new(Channel {
        socket,
        pending: Mutex::new(HashMap::new()),
        rng: AtomicU64::new(RandomState::new().hash_one(local)),
    }))
}

/// Result of a successful exchange: the response, what the scan found, the latency.
pub(crate) struct Exchanged {
    pub response: Vec<u8>,
    pub scanned: Scanned,
    pub latency: Duration,
}

impl Upstreams {
    /// Binds the upstream sockets (one family per configured address family) and starts
    /// their reader tasks. Must run inside a Tokio runtime.
    pub(crate) async fn new(
        addrs: &[SocketAddr],
        sockets: usize,
        timeout: Duration,
        udp_payload: u16,
        metrics: Arc<Metrics>,
        clock: Clock,
    ) -> std::io::Result<Self> {
        let sockets = sockets.max(1);
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut readers = Vec::new();
        if addrs.iter().any(|a| a.is_ipv4()) {
            for _ in 0..sockets {
                let c = bind_channel(SocketAddr::from(([0, 0, 0, 0], 0))).await?;
                readers.push(tokio::spawn(c.clone().read_loop()));
                v4.push(c);
            }
        }
        if addrs.iter().any(|a| a.is_ipv6()) {
            for _ in 0..sockets {
                let c = bind_channel(SocketAddr::from(([0u16; 8], 0))).await?;
                readers.push(tokio::spawn(c.clone().read_loop()));
                v6.push(c);
            }
        }
        let base = clock.instant();
        Ok(Upstreams {
            servers: addrs
                .iter()
                .map(|&addr| Server {
                    addr,
                    failures: AtomicU32::new(0),
                    last_failure_ms: AtomicU64::new(0),
                })
                .collect(),
            v4,
            v6,
            next: AtomicUsize::new(0),
            timeout,
            udp_payload,
            metrics,
            clock,
            base,
            readers,
        })
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
        let mut question = Vec::with_capacity(name.len() + 4);
        question.extend_from_slice(name);
        question.extend_from_slice(&qtype.to_be_bytes());
        question.extend_from_slice(&qclass.to_be_bytes());
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
                match self
                    .ask(
                        server.addr,
                        &question,
                        qtype,
                        qclass,
                        dnssec_ok,
                        checking_disabled,
                    )
                    .await
                {
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

    async fn ask(
        &self,
        server: SocketAddr,
        question: &[u8],
        qtype: u16,
        qclass: u16,
        dnssec_ok: bool,
        cd: bool,
    ) -> Result<(Vec<u8>, Scanned), UpstreamError> {
        let name = &question[..question.len() - 4];
        let pool = if server.is_ipv4() { &self.v4 } else { &self.v6 };
        if pool.is_empty() {
            return Err(UpstreamError::Io);
        }
        let channel = &pool[self.next.fetch_add(1, Ordering::Relaxed) % pool.len()];
        let (tx, rx) = oneshot::channel();
        let id = channel.register(server, tx).ok_or(UpstreamError::Io)?;
        let guard = SlotGuard { channel, id };
        let mut query = Vec::with_capacity(question.len() + 32);
        wire::build_upstream_query(
            &mut query,
            id,
            name,
            qtype,
            qclass,
            dnssec_ok,
            cd,
            self.udp_payload,
        );
        channel
            .socket
            .send_to(&query, server)
            .await
            .map_err(|_| UpstreamError::Io)?;
        let response = match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return Err(UpstreamError::Io),
            Err(_) => return Err(UpstreamError::Timeout),
        };
        drop(guard);
        let mut scanned = scan(&response, id, question)?;
        let mut response = response;
        if scanned.truncated {
            Metrics::bump(&self.metrics.upstream_queries);
            Metrics::bump(&self.metrics.upstream_tcp_retries);
            response = tokio::time::timeout(self.timeout, tcp_exchange(server, &query))
                .await
                .map_err(|_| UpstreamError::Timeout)?
                .map_err(|_| UpstreamError::Io)?;
            scanned = scan(&response, id, question)?;
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
            scanned = scan(&response, id, question)?;
            if scanned.opt.is_some() && !scanned.opt_last {
                return Err(UpstreamError::Malformed);
            }
        }
        Ok((response, scanned))
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
