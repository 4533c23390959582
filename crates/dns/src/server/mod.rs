//! Sockets: UDP listeners (several SO_REUSEPORT sockets per address, a thread or a task
//! each; [`udp`]), TCP listeners (length-prefixed messages, connections bounded per
//! client and in total; [`tcp`]), a supervisor that restarts a listener that fails or
//! stops the server when it cannot ([`supervise`]), graceful shutdown.

mod supervise;
mod tcp;
mod udp;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use self::supervise::{Alive, Failure, MAX_RESTARTS, RESTART_WINDOW, RestartBudget};
use self::tcp::{Connections, tcp_accept, tcp_listener};
use self::udp::udp_socket;
use crate::clock::Clock;
use crate::config::DnsConfig;
use crate::error::DnsError;
use crate::filter::{QueryFilter, QueryLog};
use crate::metrics::Metrics;
use crate::resolver::Resolver;

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
    max_tcp_per_client: usize,
    grace: Duration,
    clock: Clock,
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
        let max_tcp_per_client = config.max_tcp_connections_per_client.max(1);
        let grace = config.shutdown_grace;
        let clock = config.clock.clone();
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
            max_tcp_per_client,
            grace,
            clock,
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
    ///
    /// A listener that panics or whose socket breaks is started again (on the same
    /// socket, or a newly bound one when the socket broke), at most five times a minute
    /// each; when one cannot be started again the server stops as above and this returns
    /// [`DnsError::ListenerFailed`], so the caller can fail closed. Restarts are counted
    /// in [`Metrics::listener_restarts`], live listeners in [`Metrics::listeners_alive`].
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), DnsError> {
        let metrics = self.resolver.metrics().clone();
        let (stop_tx, stop_rx) = watch::channel(false);
        let (failed_tx, mut failed_rx) = mpsc::unbounded_channel();
        let mut listeners = Vec::new();
        for (group, &addr) in self.udp.into_iter().zip(&self.udp_addrs) {
            for sock in group {
                listeners.push(Supervised {
                    listener: Listener::Udp {
                        addr,
                        sock: Arc::new(sock),
                    },
                    budget: RestartBudget::default(),
                });
            }
        }
        for (listener, &addr) in self.tcp.into_iter().zip(&self.tcp_addrs) {
            listeners.push(Supervised {
                listener: Listener::Tcp {
                    addr,
                    listener: Arc::new(listener),
                },
                budget: RestartBudget::default(),
            });
        }
        metrics
            .listeners_expected
            .store(listeners.len() as u64, Ordering::Relaxed);
        let mut sup = Supervisor {
            resolver: self.resolver.clone(),
            metrics: metrics.clone(),
            udp_threads: self.udp_threads,
            stop_threads: Arc::new(AtomicBool::new(false)),
            stop_rx,
            failed_tx,
            threads: Vec::new(),
            tasks: JoinSet::new(),
            task_listener: HashMap::new(),
            conns: Connections::new(self.max_tcp, self.max_tcp_per_client, metrics.clone()),
            tcp_idle: self.tcp_idle,
            clock: self.clock.clone(),
            listeners,
        };
        let mut outcome = Ok(());
        for i in 0..sup.listeners.len() {
            if let Err(e) = sup.start(i) {
                outcome = Err(e);
                break;
            }
        }
        tokio::pin!(shutdown);
        while outcome.is_ok() {
            let failure = tokio::select! {
                _ = &mut shutdown => break,
                Some(failure) = failed_rx.recv() => failure,
                Some(joined) = sup.tasks.join_next_with_id() => match sup.task_failure(joined) {
                    Some(failure) => failure,
                    None => continue,
                },
            };
            outcome = sup.restart(failure);
        }

        sup.stop_threads.store(true, Ordering::Relaxed);
        sup.tasks.abort_all();
        while sup.tasks.join_next().await.is_some() {}
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
        let threads = std::mem::take(&mut sup.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        if let Err(e) = &outcome {
            tracing::error!("DNS server stopped: {e}");
        }
        outcome
    }

    /// Serves in a background task until [`ServerHandle::shutdown`] (or until a listener
    /// fails for good: see [`ServerHandle::stopped`]).
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
            join: Some(join),
            udp_addrs,
            tcp_addrs,
            metrics,
        }
    }
}

/// One socket the server reads: a UDP socket (served by a thread or a task) or a TCP
/// listener (served by an accept task).
enum Listener {
    Udp {
        addr: SocketAddr,
        sock: Arc<std::net::UdpSocket>,
    },
    Tcp {
        addr: SocketAddr,
        listener: Arc<TcpListener>,
    },
}

impl Listener {
    fn addr(&self) -> SocketAddr {
        match self {
            Listener::Udp { addr, .. } | Listener::Tcp { addr, .. } => *addr,
        }
    }

    fn proto(&self) -> &'static str {
        match self {
            Listener::Udp { .. } => "UDP",
            Listener::Tcp { .. } => "TCP",
        }
    }
}

struct Supervised {
    listener: Listener,
    budget: RestartBudget,
}

/// What [`DnsServer::run`] needs to start and restart listeners.
struct Supervisor<F: QueryFilter, L: QueryLog<F::Info>> {
    resolver: Arc<Resolver<F, L>>,
    metrics: Arc<Metrics>,
    udp_threads: bool,
    stop_threads: Arc<AtomicBool>,
    stop_rx: watch::Receiver<bool>,
    /// Worker threads report their end here.
    failed_tx: mpsc::UnboundedSender<Failure>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Listener tasks (TCP acceptors; UDP listeners without threads): `Some` error when
    /// a UDP socket broke.
    tasks: JoinSet<Option<std::io::Error>>,
    task_listener: HashMap<tokio::task::Id, usize>,
    conns: Arc<Connections>,
    tcp_idle: Duration,
    clock: Clock,
    listeners: Vec<Supervised>,
}

impl<F: QueryFilter, L: QueryLog<F::Info>> Supervisor<F, L> {
    /// Starts listener `i`.
    fn start(&mut self, i: usize) -> Result<(), DnsError> {
        let alive = Alive::new(&self.metrics);
        let failed = |cause: std::io::Error| DnsError::ListenerFailed {
            addr: self.listeners[i].listener.addr(),
            cause: format!("cannot start its worker: {cause}"),
        };
        match &self.listeners[i].listener {
            Listener::Udp { sock, .. } if self.udp_threads => {
                let (resolver, sock, stop) = (
                    self.resolver.clone(),
                    sock.clone(),
                    self.stop_threads.clone(),
                );
                let (rt, report) = (Handle::current(), self.failed_tx.clone());
                let thread = std::thread::Builder::new()
                    .name("hallpass-dns-udp".into())
                    .spawn(move || {
                        let outcome = catch_unwind(AssertUnwindSafe(|| {
                            udp::udp_thread(&resolver, &sock, &rt, &stop)
                        }));
                        drop(alive);
                        let failure = match outcome {
                            _ if stop.load(Ordering::Relaxed) => return,
                            Ok(Ok(())) => return,
                            Ok(Err(e)) => Failure::socket(i, &e),
                            Err(panic) => Failure::panicked(i, &*panic),
                        };
                        let _ = report.send(failure);
                    })
                    .map_err(failed)?;
                self.threads.push(thread);
            }
            Listener::Udp { sock, .. } => {
                let sock = Arc::new(
                    sock.try_clone()
                        .and_then(UdpSocket::from_std)
                        .map_err(failed)?,
                );
                let resolver = self.resolver.clone();
                let task = self.tasks.spawn(async move {
                    let _alive = alive;
                    Some(udp::udp_loop(resolver, sock).await)
                });
                self.task_listener.insert(task.id(), i);
            }
            Listener::Tcp { listener, .. } => {
                let fut = tcp_accept(
                    self.resolver.clone(),
                    listener.clone(),
                    self.conns.clone(),
                    self.stop_rx.clone(),
                    self.tcp_idle,
                );
                let task = self.tasks.spawn(async move {
                    let _alive = alive;
                    fut.await;
                    None
                });
                self.task_listener.insert(task.id(), i);
            }
        }
        Ok(())
    }

    /// Why a listener task ended; `None` for a task cancelled at shutdown.
    fn task_failure(
        &mut self,
        joined: Result<(tokio::task::Id, Option<std::io::Error>), tokio::task::JoinError>,
    ) -> Option<Failure> {
        match joined {
            Ok((id, broken)) => {
                let i = self.task_listener.remove(&id)?;
                Some(match broken {
                    Some(e) => Failure::socket(i, &e),
                    None => Failure {
                        listener: i,
                        cause: "stopped accepting".into(),
                        socket_broken: false,
                    },
                })
            }
            Err(e) => {
                let i = self.task_listener.remove(&e.id())?;
                e.try_into_panic()
                    .ok()
                    .map(|panic| Failure::panicked(i, &*panic))
            }
        }
    }

    /// Starts a failed listener again, or says why it cannot be.
    fn restart(&mut self, failure: Failure) -> Result<(), DnsError> {
        let i = failure.listener;
        let Some(entry) = self.listeners.get_mut(i) else {
            return Ok(());
        };
        let (addr, proto) = (entry.listener.addr(), entry.listener.proto());
        tracing::error!("DNS {proto} listener on {addr} failed: {}", failure.cause);
        if !entry.budget.take(self.clock.instant()) {
            return Err(DnsError::ListenerFailed {
                addr,
                cause: format!(
                    "{} (after {MAX_RESTARTS} restarts within {} s)",
                    failure.cause,
                    RESTART_WINDOW.as_secs()
                ),
            });
        }
        if failure.socket_broken {
            let rebound = match &mut entry.listener {
                Listener::Udp { sock, .. } => udp_socket(addr, true).map(|s| *sock = Arc::new(s)),
                Listener::Tcp { listener, .. } => {
                    tcp_listener(addr).map(|l| *listener = Arc::new(l))
                }
            };
            if let Err(e) = rebound {
                return Err(DnsError::ListenerFailed {
                    addr,
                    cause: format!("{}; binding it again failed: {e}", failure.cause),
                });
            }
        }
        Metrics::bump(&self.metrics.listener_restarts);
        tracing::warn!("DNS {proto} listener on {addr} restarted");
        self.start(i)
    }
}

/// A running server (from [`DnsServer::spawn`]). Dropping it also stops the server.
pub struct ServerHandle {
    stop: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<Result<(), DnsError>>>,
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

    /// Resolves when the server has stopped: on its own only with an error (a listener
    /// that could not be restarted, [`DnsError::ListenerFailed`]), else after
    /// [`ServerHandle::shutdown`]. Cancel-safe, for `select!` beside other services;
    /// once it has returned, later calls (and `shutdown`) return `Ok(())`.
    pub async fn stopped(&mut self) -> Result<(), DnsError> {
        let Some(join) = self.join.as_mut() else {
            return Ok(());
        };
        let joined = join.await;
        self.join = None;
        match joined {
            Ok(r) => r,
            Err(e) => Err(DnsError::Io(std::io::Error::other(e))),
        }
    }

    /// Whether the server has stopped (see [`ServerHandle::stopped`]).
    pub fn is_finished(&self) -> bool {
        self.join.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the server and waits for it to finish; the error it stopped with, if it
    /// had already stopped on its own.
    pub async fn shutdown(mut self) -> Result<(), DnsError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.stopped().await
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
