//! The listener: accepts client connections (at most `max_connections`), serves each
//! with hyper's HTTP/1.1 server (head size limit, head and idle timeout, upgrades for
//! `CONNECT`), and stops gracefully on the stop signal. hyper answers malformed input
//! with `400` (or `431` for an oversized head) and closes; nothing here parses HTTP.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use hallpass_clock::Clock;
use hallpass_engine::Engine;
use hallpass_store::EventWriter;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ProxyConfig;
use crate::auth::{Authenticator, Remembered};
use crate::metrics::Metrics;
use crate::origin::{OriginConnector, ParentPool};
use crate::resolve::Resolver;

/// hyper refuses a read buffer smaller than this.
const MIN_HEADER_BYTES: usize = 8192;
/// How long open connections get to finish after the stop signal.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The proxy's shared state: one per listener, shared by every connection.
pub struct Proxy {
    pub(crate) engine: Arc<Engine>,
    pub(crate) clock: Clock,
    pub(crate) writer: EventWriter,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) config: ProxyConfig,
    pub(crate) client: Client<OriginConnector, Incoming>,
    pub(crate) resolver: Resolver,
    /// Numbers the references shown on block pages (with the start time).
    pub(crate) references: AtomicU64,
    /// The address it listens on, for the PAC file when a client's Host is unusable.
    pub(crate) local: SocketAddr,
    pub(crate) stop: CancellationToken,
    /// Connections to the parent proxy, when there is one (the client above is then used
    /// for nothing).
    pub(crate) parent_pool: Option<ParentPool>,
    /// Checks proxy credentials; `None`: authentication is off.
    pub(crate) authenticator: Option<Arc<dyn Authenticator>>,
    pub(crate) remembered: Remembered,
}

impl Proxy {
    /// Must be called inside a Tokio runtime (the client's pool uses its timer).
    pub fn new(
        engine: Arc<Engine>,
        clock: Clock,
        writer: EventWriter,
        config: ProxyConfig,
        local: SocketAddr,
        stop: CancellationToken,
    ) -> Proxy {
        let resolver = Resolver::new(config.upstreams.clone(), config.connect_timeout);
        let connector = OriginConnector::new(
            resolver.clone(),
            config.parent.as_ref(),
            config.connect_timeout,
        );
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        let parent_pool = config.parent.clone().map(|parent| {
            ParentPool::new(
                parent,
                resolver.clone(),
                config.connect_timeout,
                clock.clone(),
            )
        });
        Proxy {
            parent_pool,
            engine,
            clock,
            writer,
            metrics: Arc::new(Metrics::default()),
            config,
            client,
            resolver,
            references: AtomicU64::new(0),
            local,
            stop,
            authenticator: None,
            remembered: Remembered::default(),
        }
    }

    /// Turns proxy authentication on: clients without a logon session must sign in
    /// (`407`), and credentials sent are checked by `authenticator`.
    pub fn with_authenticator(mut self, authenticator: Arc<dyn Authenticator>) -> Proxy {
        self.authenticator = Some(authenticator);
        self
    }

    /// The counters `/metrics` renders.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }
}

/// Serves `listener` until `proxy.stop` is cancelled; then waits (a few seconds at most)
/// for requests in flight. Errors accepting are logged and survived.
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>) -> std::io::Result<()> {
    let limit = Arc::new(Semaphore::new(proxy.config.max_connections.max(1)));
    let tracker = TaskTracker::new();
    let stop = proxy.stop.clone();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(%error, "web proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            proxy.metrics.refused_connection();
            tracing::warn!(%peer, "web proxy: connection limit reached; closing");
            drop(stream);
            continue;
        };
        let proxy = Arc::clone(&proxy);
        tracker.spawn(async move {
            connection(stream, peer.ip().to_canonical(), proxy).await;
            drop(permit);
        });
    }
    tracker.close();
    if tokio::time::timeout(STOP_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("web proxy: connections still open after the stop grace; dropping them");
    }
    Ok(())
}

/// One client connection: HTTP/1.1 with keep-alive, until it closes, idles out or the
/// stop signal (then in-flight requests finish and the connection closes).
async fn connection(stream: tokio::net::TcpStream, client: IpAddr, proxy: Arc<Proxy>) {
    let metrics = Arc::clone(&proxy.metrics);
    let _open = metrics.open();
    let _ = stream.set_nodelay(true);
    let stop = proxy.stop.clone();
    let service_proxy = Arc::clone(&proxy);
    let service = hyper::service::service_fn(move |request| {
        let proxy = Arc::clone(&service_proxy);
        async move { Ok::<_, Infallible>(proxy.handle(request, client).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(proxy.config.idle_timeout)
        .max_buf_size(proxy.config.max_header_bytes.max(MIN_HEADER_BYTES))
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let outcome = tokio::select! {
        outcome = connection.as_mut() => outcome,
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(STOP_GRACE, connection.as_mut()).await {
                Ok(outcome) => outcome,
                Err(_) => return,
            }
        }
    };
    if let Err(error) = outcome {
        // Malformed requests (answered 400 by hyper), timeouts, resets: the client's
        // business, not an error of the proxy.
        tracing::debug!(%client, %error, "web proxy: connection ended");
    }
}
