//! UDP listeners: a dedicated OS thread per socket doing blocking receives (default), or
//! a Tokio task per socket. Both answer what they can at once and hand queries that wait
//! on upstream to runtime tasks, which send their answers. A listener returns (with the
//! error) only when its socket is broken; panics are caught by the supervisor.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::runtime::Handle;

use super::supervise::BROKEN_AFTER;
use crate::filter::{QueryFilter, QueryLog, Transport};
use crate::metrics::Metrics;
use crate::resolver::{Handled, InflightPermit, PendingQuery, Resolver};

pub(crate) fn udp_socket(
    addr: SocketAddr,
    reuse_port: bool,
) -> std::io::Result<std::net::UdpSocket> {
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

/// How often a blocking UDP thread wakes up to check for shutdown.
const UDP_THREAD_POLL: Duration = Duration::from_millis(100);

/// Consecutive failed receives on one socket: a few are transient, [`BROKEN_AFTER`] in
/// a row (with no datagram and no poll timeout between) mean the socket is broken.
#[derive(Default)]
struct ReceiveErrors(u32);

impl ReceiveErrors {
    /// A receive worked (or timed out waiting: the socket is fine).
    #[inline]
    fn clear(&mut self) {
        self.0 = 0;
    }

    /// A receive failed: `Err` (the error) once the socket counts as broken.
    fn failed(&mut self, e: std::io::Error) -> Result<(), std::io::Error> {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::Interrupted
        ) {
            self.clear();
            return Ok(());
        }
        self.0 += 1;
        if self.0 >= BROKEN_AFTER {
            return Err(e);
        }
        tracing::debug!("DNS UDP receive error: {e}");
        Ok(())
    }
}

/// Makes a worker thread's socket blocking, waking every [`UDP_THREAD_POLL`] to check for
/// shutdown, and returns a second handle for the tasks that send answers from upstream
/// (blocking too, as the flag belongs to the socket; a UDP send waits only when the
/// socket buffer is full).
fn blocking_worker_socket(sock: &std::net::UdpSocket) -> std::io::Result<Arc<std::net::UdpSocket>> {
    sock.set_nonblocking(false)?;
    sock.set_read_timeout(Some(UDP_THREAD_POLL))?;
    Ok(Arc::new(sock.try_clone()?))
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
/// Returns `Ok` when `stop` is set, the error when the socket is broken.
#[cfg(not(target_os = "linux"))]
pub(crate) fn udp_thread<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: &Arc<Resolver<F, L>>,
    sock: &std::net::UdpSocket,
    rt: &Handle,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let sender = blocking_worker_socket(sock)?;
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::with_capacity(4096);
    let mut errors = ReceiveErrors::default();
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) => {
                errors.failed(e)?;
                continue;
            }
        };
        errors.clear();
        let client = peer.ip().to_canonical();
        match resolver.handle_packet(&buf[..n], client, Transport::Udp, &mut out) {
            Handled::Answered => {
                let _ = sock.send_to(&out, peer);
            }
            Handled::Dropped => {}
            Handled::Upstream(p) => match resolver.try_begin_upstream() {
                Some(permit) => spawn_upstream_blocking(rt, resolver, &sender, p, peer, permit),
                None => {
                    resolver.overloaded(p, &mut out);
                    let _ = sock.send_to(&out, peer);
                }
            },
        }
    }
    Ok(())
}

/// A UDP worker on its own OS thread (Linux): a blocking `recvmmsg` that wakes for the
/// first waiting query and takes the rest with it, answers what it can at once and sends
/// those answers in one `sendmmsg`. The kernel wakes this thread directly, with no async
/// runtime between the socket and the answer. Queries that must wait on upstream are
/// handed to the Tokio runtime, which sends their answers. Returns `Ok` when `stop` is
/// set, the error when the socket is broken.
#[cfg(target_os = "linux")]
pub(crate) fn udp_thread<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: &Arc<Resolver<F, L>>,
    sock: &std::net::UdpSocket,
    rt: &Handle,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    use crate::batch_io::{self, BATCH, Received, SLOT};
    use std::os::fd::AsRawFd;

    let sender = blocking_worker_socket(sock)?;
    let fd = sock.as_raw_fd();
    let mut buf = vec![0u8; BATCH * SLOT];
    let mut got: Vec<Received> = Vec::with_capacity(BATCH);
    let mut answers: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(512)).collect();
    let mut peers: Vec<SocketAddr> = Vec::with_capacity(BATCH);
    let mut errors = ReceiveErrors::default();
    while !stop.load(Ordering::Relaxed) {
        match batch_io::recv_batch_waiting(fd, &mut buf, &mut got) {
            // A blocking receive that returns nothing: the socket was shut down.
            Ok(()) if got.is_empty() => {
                errors.failed(std::io::Error::other("receive returned no datagram"))?;
                continue;
            }
            Ok(()) => errors.clear(),
            Err(e) => {
                errors.failed(e)?;
                continue;
            }
        }
        Metrics::batch_received(resolver.metrics(), got.len());
        answer_batch(
            resolver,
            &buf,
            &got,
            &mut answers,
            &mut peers,
            |p, peer, permit| spawn_upstream_blocking(rt, resolver, &sender, p, peer, permit),
        );
        let answers = &answers[..peers.len()];
        // A blocking socket: a send waits for room rather than failing.
        let sent = batch_io::send_batch(fd, answers, &peers).unwrap_or(0);
        for (answer, peer) in answers.iter().zip(&peers).skip(sent) {
            let _ = sock.send_to(answer, *peer);
        }
    }
    Ok(())
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
/// on upstream get a task each, as in the portable loop. Returns only when the socket is
/// broken.
#[cfg(target_os = "linux")]
pub(crate) async fn udp_loop<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: Arc<Resolver<F, L>>,
    sock: Arc<UdpSocket>,
) -> std::io::Error {
    use crate::batch_io::{self, BATCH, Received, SLOT};
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;

    let fd = sock.as_raw_fd();
    let mut buf = vec![0u8; BATCH * SLOT];
    let mut got: Vec<Received> = Vec::with_capacity(BATCH);
    let mut answers: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(512)).collect();
    let mut peers: Vec<SocketAddr> = Vec::with_capacity(BATCH);
    let mut errors = ReceiveErrors::default();
    loop {
        if let Err(e) = sock.readable().await {
            if let Err(e) = errors.failed(e) {
                return e;
            }
            tokio::task::yield_now().await;
            continue;
        }
        match sock.try_io(Interest::READABLE, || {
            batch_io::recv_batch(fd, &mut buf, &mut got)
        }) {
            Ok(()) => errors.clear(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                if let Err(e) = errors.failed(e) {
                    return e;
                }
                tokio::task::yield_now().await;
                continue;
            }
        }
        Metrics::batch_received(resolver.metrics(), got.len());
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

/// A UDP listener task: one query per receive call. Returns only when the socket is
/// broken.
#[cfg(not(target_os = "linux"))]
pub(crate) async fn udp_loop<F: QueryFilter, L: QueryLog<F::Info>>(
    resolver: Arc<Resolver<F, L>>,
    sock: Arc<UdpSocket>,
) -> std::io::Error {
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::with_capacity(4096);
    let mut errors = ReceiveErrors::default();
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                if let Err(e) = errors.failed(e) {
                    return e;
                }
                tokio::task::yield_now().await;
                continue;
            }
        };
        errors.clear();
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
