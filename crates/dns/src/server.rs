//! Sockets: UDP listeners (several SO_REUSEPORT sockets per address, one task each),
//! TCP listeners (length-prefixed messages, connections served concurrently), graceful
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::runtime::Handle;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::config::DnsConfig;
use crate::error::DnsError;
use crate::filter::{QueryFilter, QueryLog, Transport};
use crate::metrics::Metrics;
use crate::resolver::{Handled, InflightPermit, PendingQuery, Resolver};

/// A bound DNS server, not yet serving. See the crate docs for an example.
pub struct DnsServer<F: QueryFilter, L: QueryLog<F::Info>> {
    resolver: Arc<Resolver<F, L>>,
    udp: Vec<Vec<std::net::UdpSocket>>,
    udp_threads: bool,
    tcp: Vec<TcpListener>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    tcp_idle: Duration,
    max_tcp: usize,
    grace: Duration,
}

fn udp_socket(addr: SocketAddr, reuse_port: bool) -> std::io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    #[cfg(all(
        unix,
        not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
    ))]
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    #[cfg(not(all(
        unix,
        not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
    )))]
    let _ = reuse_port;
    // Best effort: a large receive buffer absorbs bursts.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn tcp_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

impl<F: QueryFilter, L: QueryLog<F::Info>> DnsServer<F, L> {
    /// Binds every listen address (UDP and TCP; port 0 picks one free port for both) and
    /// the upstream sockets. Must run inside a Tokio runtime; serving starts with
    /// [`DnsServer::run`] or [`DnsServer::spawn`].
    pub async fn bind(config: DnsConfig, filter: F, log: L) -> Result<Self, DnsError> {
        if config.listen.is_empty() {
            return Err(DnsError::Config("no listen address".into()));
        }
        let n = match config.udp_sockets {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut udp = Vec::new();
        let mut udp_addrs = Vec::new();
        let mut tcp = Vec::new();
        let mut tcp_addrs = Vec::new();
        for &addr in &config.listen {
            let bind_err = |proto, addr, source| DnsError::Bind {
                proto,
                addr,
                source,
            };
            // Port 0 picks a free UDP port, then takes the same number for TCP; another
            // process may already hold that TCP port, so pick again a few times.
            let attempts = if addr.port() == 0 { 16 } else { 1 };
            let mut attempt = 0;
            let (group, bound, l) = loop {
                attempt += 1;
                let first = udp_socket(addr, true).map_err(|e| bind_err("UDP", addr, e))?;
                let bound = first.local_addr()?;
                let mut group = Vec::with_capacity(n);
                for _ in 1..n {
                    // Without SO_REUSEPORT, the extra workers share the first socket.
                    match udp_socket(bound, true).or_else(|_| first.try_clone()) {
                        Ok(s) => group.push(s),
                        Err(e) => return Err(bind_err("UDP", bound, e)),
                    }
                }
                group.push(first);
                match tcp_listener(bound) {
                    Ok(l) => break (group, bound, l),
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < attempts => {
                        continue;
                    }
                    Err(e) => return Err(bind_err("TCP", bound, e)),
                }
            };
            udp.push(group);
            udp_addrs.push(bound);
            tcp_addrs.push(l.local_addr()?);
            tcp.push(l);
        }
        let udp_threads = config.udp_threads;
        let tcp_idle = config.tcp_idle_timeout;
        let max_tcp = config.max_tcp_connections.max(1);
        let grace = config.shutdown_grace;
        let resolver = Arc::new(Resolver::new(config, filter, log).await?);
        Ok(DnsServer {
            resolver,
            udp,
            udp_threads,
            tcp,
            udp_addrs,
            tcp_addrs,
            tcp_idle,
            max_tcp,
            grace,
        })
    }

    /// The bound UDP addresses, one per listen address, in configuration order.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The bound TCP addresses, one per listen address, in configuration order.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// The resolver's metrics (shared; keep the `Arc` for `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.resolver.metrics().clone()
    }

    /// The resolver behind the sockets.
    pub fn resolver(&self) -> &Arc<Resolver<F, L>> {
        &self.resolver
    }

    /// Serves until `shutdown` completes, then stops accepting, closes client TCP
    /// connections, and waits up to `shutdown_grace` for queries waiting on upstream.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), DnsError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let stop_threads = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for group in self.udp {
            for sock in group {
                if self.udp_threads {
                    let (r, stop, rt) = (
                        self.resolver.clone(),
                        stop_threads.clone(),
                        Handle::current(),
                    );
                    let t = std::thread::Builder::new()
                        .name("hallpass-dns-udp".into())
                        .spawn(move || udp_thread(r, sock, rt, stop))?;
                    threads.push(t);
                } else {
                    let sock = Arc::new(UdpSocket::from_std(sock)?);
                    tasks.spawn(udp_loop(self.resolver.clone(), sock));
                }
            }
        }
        let conns = Arc::new(Semaphore::new(self.max_tcp));
        for listener in self.tcp {
            tasks.spawn(tcp_accept(
                self.resolver.clone(),
                listener,
                conns.clone(),
                stop_rx.clone(),
                self.tcp_idle,
            ));
        }
        shutdown.await;
        stop_threads.store(true, Ordering::Relaxed);
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let _ = stop_tx.send(true);
        let deadline = tokio::time::sleep(self.grace);
        tokio::pin!(deadline);
        while self.resolver.inflight() > 0 {
            tokio::select! {
                _ = &mut deadline => break,
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
        // The UDP threads notice the stop flag within one receive timeout.
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        Ok(())
    }

    /// Serves in a background task until [`ServerHandle::shutdown`].
    pub fn spawn(self) -> ServerHandle {
        let (tx, rx) = oneshot::channel::<()>();
        let udp_addrs = self.udp_addrs.clone();
        let tcp_addrs = self.tcp_addrs.clone();
        let metrics = self.metrics();
        let join = tokio::spawn(self.run(async move {
            let _ = rx.await;
        }));
        ServerHandle {
            stop: Some(tx),
            join,
            udp_addrs,
            tcp_addrs,
            metrics,
        }
    }
}

/// A running server (from [`DnsServer::spawn`]). Dropping it also stops the server.
pub struct ServerHandle {
    stop: Option<oneshot::Sender<()>>,
    join: JoinHandle<Result<(), DnsError>>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    metrics: Arc<Metrics>,
}

impl ServerHandle {
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) -> Result<(), DnsError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match (&mut self.join).await {
            Ok(r) => r,
            Err(e) => Err(DnsError::Io(std::io::Error::other(e))),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// How often a blocking UDP thread wakes up to check for shutdown.
const UDP_THREAD_POLL: Duration = Duration::from_millis(100);

/// Makes a worker thread's socket blocking, waking every [`UDP_THREAD_POLL`] to check for
/// shutdown, and returns a second handle for the tasks that send answers from upstream
/// (blocking too, as the flag belongs to the socket; a UDP send waits only when the
/// socket buffer is full). `None`, logged, when the worker cannot run.
fn blocking_worker_socket(sock: &std::net::UdpSocket) -> Option<Arc<std::net::UdpSocket>> {
    if sock.set_nonblocking(false).is_err() || sock.set_read_timeout(Some(UDP_THREAD_POLL)).is_err()
    {
        tracing::error!("DNS UDP socket cannot be made blocking; this worker stops");
        return None;
    }
    match sock.try_clone() {
        Ok(s) => Some(Arc::new(s)),
        Err(e) => {
            tracing::error!("DNS UDP socket cannot be cloned: {e}; this worker stops");
            None
        }
    }
}

/// A worker thread's receive failed: a timeout (the shutdown poll) is normal.
fn log_receive_error(e: &std::io::Error) {
    if !matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ) {
        tracing::debug!("DNS UDP receive error: {e}");
    }
}

/// From a worker thread: hands a query that waits on upstream (with its place among the
/// `max_inflight`) to a runtime task, which sends the answer through `sender`.
fn spawn_upstream_blocking<F: QueryFilter, L: QueryLog<F::Info>>(
    rt: &Handle,
    resolver: &Arc<Resolver<F, L>>,
    sender: &Arc<std::net::UdpSocket>,
    p: PendingQuery<F::Info>,
    peer: SocketAddr,
    permit: InflightPermit,
) {
    let (r, s) = (resolver.clone(), sender.clone());
    rt.spawn(async move {
        let mut out = Vec::with_capacity(512);
        r.resolve(p, &mut out).await;
        if !out.is_empty() {
            let _ = s.send_to(&out, peer);
        }
        drop(permit);
    });
}

/// A UDP worker on its own OS thread: blocking receive, answer in place; queries that
/// must wait on upstream are handed to the Tokio runtime, which sends their answers.
#[cfg(not(target_os = "linux"))]
fn udp_thread<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: Arc<Resolver<F, L>>,
    sock: std::net::UdpSocket,
    rt: Handle,
    stop: Arc<AtomicBool>,
) {
    let Some(sender) = blocking_worker_socket(&sock) else {
        return;
    };
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::with_capacity(4096);
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) => {
                log_receive_error(&e);
                continue;
            }
        };
        let client = peer.ip().to_canonical();
        match resolver.handle_packet(&buf[..n], client, Transport::Udp, &mut out) {
            Handled::Answered => {
                let _ = sock.send_to(&out, peer);
            }
            Handled::Dropped => {}
            Handled::Upstream(p) => match resolver.try_begin_upstream() {
                Some(permit) => spawn_upstream_blocking(&rt, &resolver, &sender, p, peer, permit),
                None => {
                    resolver.overloaded(p, &mut out);
                    let _ = sock.send_to(&out, peer);
                }
            },
        }
    }
}

/// A UDP worker on its own OS thread (Linux): a blocking `recvmmsg` that wakes for the
/// first waiting query and takes the rest with it, answers what it can at once and sends
/// those answers in one `sendmmsg`. The kernel wakes this thread directly, with no async
/// runtime between the socket and the answer. Queries that must wait on upstream are
/// handed to the Tokio runtime, which sends their answers.
#[cfg(target_os = "linux")]
fn udp_thread<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: Arc<Resolver<F, L>>,
    sock: std::net::UdpSocket,
    rt: Handle,
    stop: Arc<AtomicBool>,
) {
    use crate::batch_io::{self, BATCH, Received, SLOT};
    use std::os::fd::AsRawFd;

    let Some(sender) = blocking_worker_socket(&sock) else {
        return;
    };
    let fd = sock.as_raw_fd();
    let mut buf = vec![0u8; BATCH * SLOT];
    let mut got: Vec<Received> = Vec::with_capacity(BATCH);
    let mut answers: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(512)).collect();
    let mut peers: Vec<SocketAddr> = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = batch_io::recv_batch_waiting(fd, &mut buf, &mut got) {
            log_receive_error(&e);
            continue;
        }
        answer_batch(
            &resolver,
            &buf,
            &got,
            &mut answers,
            &mut peers,
            |p, peer, permit| spawn_upstream_blocking(&rt, &resolver, &sender, p, peer, permit),
        );
        let answers = &answers[..peers.len()];
        // A blocking socket: a send waits for room rather than failing.
        let sent = batch_io::send_batch(fd, answers, &peers).unwrap_or(0);
        for (answer, peer) in answers.iter().zip(&peers).skip(sent) {
            let _ = sock.send_to(answer, *peer);
        }
    }
}

/// Answers the received datagrams `got` (datagram `i` in `buf[i * SLOT..]`): the answer
/// for `peers[k]` goes in `answers[k]`. A query that waits on upstream goes to
/// `to_upstream` with its place among the `max_inflight` (or, when none is left, is
/// answered at once as overloaded); `to_upstream` starts a task that sends its answer.
#[cfg(target_os = "linux")]
fn answer_batch<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: &Arc<Resolver<F, L>>,
    buf: &[u8],
    got: &[crate::batch_io::Received],
    answers: &mut [Vec<u8>],
    peers: &mut Vec<SocketAddr>,
    mut to_upstream: impl FnMut(PendingQuery<F::Info>, SocketAddr, InflightPermit),
) {
    use crate::batch_io::SLOT;
    peers.clear();
    for (i, r) in got.iter().enumerate() {
        let Some(peer) = r.peer else { continue };
        if r.truncated {
            // Larger than any query; not worth an answer.
            Metrics::bump(&resolver.metrics().dropped);
            continue;
        }
        let packet = &buf[i * SLOT..i * SLOT + r.len];
        let out = &mut answers[peers.len()];
        let client = peer.ip().to_canonical();
        match resolver.handle_packet(packet, client, Transport::Udp, out) {
            Handled::Answered => peers.push(peer),
            Handled::Dropped => {}
            Handled::Upstream(p) => match resolver.try_begin_upstream() {
                Some(permit) => to_upstream(p, peer, permit),
                None => {
                    resolver.overloaded(p, out);
                    peers.push(peer);
                }
            },
        }
    }
}

/// A UDP listener task on Linux: takes every waiting query in one `recvmmsg`, answers
/// what it can at once, and sends those answers in one `sendmmsg`; queries that must wait
/// on upstream get a task each, as in the portable loop.
#[cfg(target_os = "linux")]
async fn udp_loop<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: Arc<Resolver<F, L>>,
    sock: Arc<UdpSocket>,
) {
    use crate::batch_io::{self, BATCH, Received, SLOT};
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;

    let fd = sock.as_raw_fd();
    let mut buf = vec![0u8; BATCH * SLOT];
    let mut got: Vec<Received> = Vec::with_capacity(BATCH);
    let mut answers: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(512)).collect();
    let mut peers: Vec<SocketAddr> = Vec::with_capacity(BATCH);
    loop {
        if sock.readable().await.is_err() {
            tokio::task::yield_now().await;
            continue;
        }
        match sock.try_io(Interest::READABLE, || {
            batch_io::recv_batch(fd, &mut buf, &mut got)
        }) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                tracing::debug!("DNS UDP receive error: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        }
        answer_batch(
            &resolver,
            &buf,
            &got,
            &mut answers,
            &mut peers,
            |p, peer, permit| spawn_upstream(&resolver, &sock, p, peer, permit),
        );
        send_answers(&sock, &answers[..peers.len()], &peers).await;
    }
}

/// Hands a UDP query that waits on upstream (with its place among the `max_inflight`) to
/// a task of its own, which sends the answer.
fn spawn_upstream<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: &Arc<Resolver<F, L>>,
    sock: &Arc<UdpSocket>,
    p: PendingQuery<F::Info>,
    peer: SocketAddr,
    permit: InflightPermit,
) {
    let r = resolver.clone();
    let s = sock.clone();
    tokio::spawn(async move {
        let mut out = Vec::with_capacity(512);
        r.resolve(p, &mut out).await;
        // A UDP send does not wait unless the socket buffer is full.
        if !out.is_empty() {
            let _ = s.send_to(&out, peer).await;
        }
        drop(permit);
    });
}

/// Sends `answers[i]` to `peers[i]`: one `sendmmsg` for as many as the socket takes, then
/// one by one (waiting for room) for the rest, so that no answer is silently skipped.
#[cfg(target_os = "linux")]
async fn send_answers(sock: &UdpSocket, answers: &[Vec<u8>], peers: &[SocketAddr]) {
    use std::os::fd::AsRawFd;
    if answers.is_empty() {
        return;
    }
    let fd = sock.as_raw_fd();
    let sent = sock
        .try_io(tokio::io::Interest::WRITABLE, || {
            crate::batch_io::send_batch(fd, answers, peers)
        })
        .unwrap_or(0);
    for (answer, peer) in answers.iter().zip(peers).skip(sent) {
        let _ = sock.send_to(answer, *peer).await;
    }
}

/// A UDP listener task: one query per receive call.
#[cfg(not(target_os = "linux"))]
async fn udp_loop<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: Arc<Resolver<F, L>>,
    sock: Arc<UdpSocket>,
) {
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::with_capacity(4096);
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("DNS UDP receive error: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let client = peer.ip().to_canonical();
        match resolver.handle_packet(&buf[..n], client, Transport::Udp, &mut out) {
            Handled::Answered => {
                let _ = sock.send_to(&out, peer).await;
            }
            Handled::Dropped => {}
            Handled::Upstream(p) => match resolver.try_begin_upstream() {
                Some(permit) => spawn_upstream(&resolver, &sock, p, peer, permit),
                None => {
                    resolver.overloaded(p, &mut out);
                    let _ = sock.send_to(&out, peer).await;
                }
            },
        }
    }
}

async fn tcp_accept<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: Arc<Resolver<F, L>>,
    listener: TcpListener,
    conns: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    idle: Duration,
) {
    loop {
        let Ok(permit) = conns.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("DNS TCP accept error: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let r = resolver.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tcp_conn(r, stream, peer, stop, idle).await;
            drop(permit);
        });
    }
}

async fn tcp_conn<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: Arc<Resolver<F, L>>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    idle: Duration,
) {
    let _ = stream.set_nodelay(true);
    let client = peer.ip().to_canonical();
    let mut buf = Vec::new();
    let mut out = Vec::with_capacity(4096);
    let mut framed = Vec::with_capacity(4098);
    loop {
        let len = tokio::select! {
            r = tokio::time::timeout(idle, stream.read_u16()) => match r {
                Ok(Ok(l)) => usize::from(l),
                _ => return,
            },
            _ = stop.changed() => return,
        };
        buf.resize(len, 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        match resolver.handle_packet(&buf, client, Transport::Tcp, &mut out) {
            Handled::Answered => {}
            Handled::Dropped => continue,
            Handled::Upstream(p) => match resolver.try_begin_upstream() {
                Some(_permit) => resolver.resolve(p, &mut out).await,
                None => resolver.overloaded(p, &mut out),
            },
        }
        if out.is_empty() || out.len() > usize::from(u16::MAX) {
            continue;
        }
        framed.clear();
        framed.extend_from_slice(&(out.len() as u16).to_be_bytes());
        framed.extend_from_slice(&out);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}
