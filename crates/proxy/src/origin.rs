//! Connections to origins: directly (names through [`Resolver`]) or, when the school
//! sits behind a regional filter, to a parent proxy, with requests in absolute form.
//! hyper-util's pooled client reuses them (keep-alive per origin); `CONNECT` tunnels
//! get a connection of their own.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Empty;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::resolve::Resolver;
use crate::target::HostPort;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens connections for the pooled client: to the origin, or to the parent proxy
/// (marked as proxied, so the client sends absolute-form requests).
#[derive(Clone)]
pub struct OriginConnector {
    http: HttpConnector<Resolver>,
    parent: Option<Uri>,
}

impl OriginConnector {
    pub fn new(resolver: Resolver, parent: Option<&HostPort>, connect_timeout: Duration) -> Self {
        let mut http = HttpConnector::new_with_resolver(resolver);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let parent = parent.and_then(|p| format!("http://{}/", p.authority()).parse().ok());
        OriginConnector { http, parent }
    }
}

impl tower_service::Service<Uri> for OriginConnector {
    type Response = OriginConn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<OriginConn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let proxied = self.parent.is_some();
        let target = self.parent.clone().unwrap_or(uri);
        let connecting = self.http.call(target);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(OriginConn { io, proxied })
        })
    }
}

/// A connection to an origin or the parent proxy.
pub struct OriginConn {
    io: TokioIo<TcpStream>,
    proxied: bool,
}

impl Connection for OriginConn {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for OriginConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for OriginConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Why a tunnel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error(transparent)]
    Resolve(#[from] crate::resolve::ResolveError),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connecting to {0} timed out")]
    Timeout(String),
    #[error("the parent proxy {parent}: {reason}")]
    Parent { parent: String, reason: String },
}

/// A byte stream to `target` for a `CONNECT` tunnel: a TCP connection to its first
/// reachable address, or a tunnel through the parent proxy.
pub enum TunnelStream {
    Direct(TcpStream),
    Parent(TokioIo<hyper::upgrade::Upgraded>),
}

/// Opens the origin side of a `CONNECT` tunnel.
pub async fn open_tunnel(
    target: &HostPort,
    resolver: &Resolver,
    parent: Option<&HostPort>,
    timeout: Duration,
) -> Result<TunnelStream, TunnelError> {
    match parent {
        Some(parent) => tunnel_through_parent(target, parent, resolver, timeout).await,
        None => Ok(TunnelStream::Direct(
            connect_direct(target, resolver, timeout).await?,
        )),
    }
}

/// A TCP connection to the first address of `target` that answers.
async fn connect_direct(
    target: &HostPort,
    resolver: &Resolver,
    timeout: Duration,
) -> Result<TcpStream, TunnelError> {
    let ips = resolver.lookup(&target.host).await?;
    let mut last = None;
    for ip in ips {
        let addr = SocketAddr::new(ip, target.port);
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(source)) => last = Some(TunnelError::Connect { addr, source }),
            Err(_) => last = Some(TunnelError::Timeout(addr.to_string())),
        }
    }
    Err(last.unwrap_or_else(|| TunnelError::Timeout(target.authority())))
}

/// `CONNECT target` sent to the parent; its `2xx` turns the connection into the tunnel.
async fn tunnel_through_parent(
    target: &HostPort,
    parent: &HostPort,
    resolver: &Resolver,
    timeout: Duration,
) -> Result<TunnelStream, TunnelError> {
    let failed = |reason: String| TunnelError::Parent {
        parent: parent.authority(),
        reason,
    };
    let stream = connect_direct(parent, resolver, timeout).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(e.to_string()))?;
    tokio::spawn(connection.with_upgrades());
    let authority = target.authority();
    let request = http::Request::connect(authority.as_str())
        .header(http::header::HOST, authority.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|e| failed(e.to_string()))?;
    let response = tokio::time::timeout(timeout, sender.send_request(request))
        .await
        .map_err(|_| failed("no answer to CONNECT in time".into()))?
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("refused CONNECT: {}", response.status())));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(TunnelStream::Parent(TokioIo::new(upgraded)))
}

/// Keep-alive connections to the parent proxy, shared by every origin: hyper-util's pool
/// is keyed by the request's host, which behind a parent would open a connection per
/// site to one and the same parent (as squid's `cache_peer` does not).
pub struct ParentPool {
    parent: HostPort,
    resolver: Resolver,
    connect_timeout: Duration,
    clock: hallpass_clock::Clock,
    idle: std::sync::Mutex<Vec<(SendRequest<hyper::body::Incoming>, std::time::Instant)>>,
}

type SendRequest<B> = hyper::client::conn::http1::SendRequest<B>;

/// A pooled connection is not reused after this long unused: the parent may have closed
/// it (nginx's keep-alive timeout is 75 s), and a request sent on a closing connection
/// fails.
const PARENT_IDLE: Duration = Duration::from_secs(30);
/// Connections kept in the pool at most.
const PARENT_POOL_MAX: usize = 512;

impl ParentPool {
    pub fn new(
        parent: HostPort,
        resolver: Resolver,
        connect_timeout: Duration,
        clock: hallpass_clock::Clock,
    ) -> ParentPool {
        ParentPool {
            parent,
            resolver,
            connect_timeout,
            clock,
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Sends `request` (absolute form, as a parent expects) on a ready pooled connection
    /// or a new one; the connection goes back to the pool at once, and becomes ready
    /// again when its response has been read.
    pub async fn send(
        &self,
        request: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Response<hyper::body::Incoming>, String> {
        let mut sender = match self.checkout() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        let response = sender.send_request(request);
        self.checkin(sender);
        response
            .await
            .map_err(|error| format!("the parent proxy {}: {error}", self.parent.authority()))
    }

    fn checkout(&self) -> Option<SendRequest<hyper::body::Incoming>> {
        let now = self.clock.instant();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|(sender, since)| {
            !sender.is_closed() && now.saturating_duration_since(*since) < PARENT_IDLE
        });
        let ready = idle.iter().position(|(sender, _)| sender.is_ready())?;
        Some(idle.swap_remove(ready).0)
    }

    fn checkin(&self, sender: SendRequest<hyper::body::Incoming>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < PARENT_POOL_MAX {
            idle.push((sender, self.clock.instant()));
        }
    }

    async fn connect(&self) -> Result<SendRequest<hyper::body::Incoming>, String> {
        let stream = connect_direct(&self.parent, &self.resolver, self.connect_timeout)
            .await
            .map_err(|error| error.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| format!("the parent proxy {}: {error}", self.parent.authority()))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "web proxy: a connection to the parent ended");
            }
        });
        sender
            .ready()
            .await
            .map_err(|error| format!("the parent proxy {}: {error}", self.parent.authority()))?;
        Ok(sender)
    }
}
