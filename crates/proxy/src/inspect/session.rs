//! One inspected tunnel: the client's TLS ended with the host's minted certificate (the
//! ClientHello bytes already read for the SNI check replayed first), the origin's TLS
//! opened by the proxy and verified, and hyper serving the requests inside (HTTP/2 or
//! HTTP/1.1, as the client's ALPN chose; to the origin likewise), each through
//! [`Proxy::web`] as a plain `http://` request would go.

use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hallpass_engine::Who;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::idle::Activity;
use crate::origin::{TunnelStream, open_tunnel};
use crate::record::{ProxyBody, Recorder};
use crate::server::Proxy;
use crate::target::{HostPort, WebTarget, normalise_path};

/// A byte stream either way (the client's upgraded connection, an origin's TCP or
/// parent tunnel), boxed so TLS wraps any of them.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A connection to the origin: HTTP/2 when its ALPN offered it (requests multiplexed,
/// the sender cloned), else HTTP/1.1 (one request at a time).
enum SendRequest {
    H1(hyper::client::conn::http1::SendRequest<Incoming>),
    H2(hyper::client::conn::http2::SendRequest<Incoming>),
}

impl SendRequest {
    fn is_closed(&self) -> bool {
        match self {
            SendRequest::H1(sender) => sender.is_closed(),
            SendRequest::H2(sender) => sender.is_closed(),
        }
    }
}

/// The origin side of an inspected tunnel: one TLS connection to the CONNECT host,
/// opened again when the origin closes it between requests.
pub(crate) struct OriginLink {
    target: HostPort,
    state: tokio::sync::Mutex<Link>,
}

enum Link {
    /// Not opened yet: the TCP (or parent) stream opened when the CONNECT was allowed.
    Fresh(Option<TunnelStream>),
    Ready(SendRequest),
    /// The origin's TLS failed (an unverifiable certificate): every request is told so.
    Failed(String),
}

impl OriginLink {
    /// Sends `request` (its URI made origin-form) to the origin; the origin's answer, or
    /// why there is none.
    pub(crate) async fn send(
        &self,
        proxy: &Proxy,
        mut request: Request<Incoming>,
    ) -> Result<Response<Incoming>, String> {
        let origin_form = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse::<Uri>()
            .map_err(|e| e.to_string())?;
        let mut state = self.state.lock().await;
        let reusable = matches!(&*state, Link::Ready(sender) if !sender.is_closed());
        if !reusable {
            let stream = match &mut *state {
                Link::Failed(why) => return Err(why.clone()),
                Link::Fresh(stream) => stream.take(),
                Link::Ready(_) => None,
            };
            match self.connect(proxy, stream).await {
                Ok(sender) => *state = Link::Ready(sender),
                Err(Fatal(why)) => {
                    *state = Link::Failed(why.clone());
                    return Err(why);
                }
                Err(Retry(why)) => return Err(why),
            }
        }
        let sender = match &mut *state {
            Link::Ready(SendRequest::H2(sender)) => {
                // Multiplexed: the lock is not held while the origin answers.
                let mut sender = sender.clone();
                drop(state);
                // HTTP/2 names the site in :authority, from an absolute URI.
                *request.uri_mut() = format!("https://{}{}", self.target.authority(), origin_form)
                    .parse::<Uri>()
                    .map_err(|e| e.to_string())?;
                request.headers_mut().remove(http::header::HOST);
                *request.version_mut() = http::Version::HTTP_2;
                return sender
                    .send_request(request)
                    .await
                    .map_err(|e| format!("the origin failed: {e}"));
            }
            Link::Ready(SendRequest::H1(sender)) => sender,
            _ => return Err("no connection to the origin".into()),
        };
        *request.uri_mut() = origin_form;
        *request.version_mut() = http::Version::HTTP_11;
        sender
            .ready()
            .await
            .map_err(|e| format!("the origin closed the connection: {e}"))?;
        sender
            .send_request(request)
            .await
            .map_err(|e| format!("the origin failed: {e}"))
    }

    /// TLS to the origin over `stream` (or a new connection), then HTTP/1.1.
    async fn connect(
        &self,
        proxy: &Proxy,
        stream: Option<TunnelStream>,
    ) -> Result<SendRequest, Failure> {
        let Some(inspector) = &proxy.config.inspector else {
            return Err(Fatal("inspection is off".into()));
        };
        let stream = match stream {
            Some(stream) => stream,
            None => open_tunnel(
                &self.target,
                &proxy.resolver,
                proxy.config.parent.as_ref(),
                proxy.config.connect_timeout,
            )
            .await
            .map_err(|e| Retry(e.to_string()))?,
        };
        let stream: Box<dyn Io> = match stream {
            TunnelStream::Direct(stream) => Box::new(stream),
            TunnelStream::Parent(stream) => Box::new(stream),
        };
        let name = ServerName::try_from(self.target.host.clone())
            .map_err(|e| Fatal(format!("{}: {e}", self.target.host)))?;
        let connector = tokio_rustls::TlsConnector::from(inspector.origin_tls());
        let tls = tokio::time::timeout(
            proxy.config.connect_timeout,
            connector.connect(name, stream),
        )
        .await
        .map_err(|_| Retry("the origin's TLS handshake timed out".into()))?
        .map_err(|e| {
            Fatal(format!(
                "the secure connection to {} failed (its certificate could not be verified, or it does not speak TLS): {e}",
                self.target.host
            ))
        })?;
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            let (sender, connection) =
                hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .handshake(TokioIo::new(tls))
                    .await
                    .map_err(|e| Retry(e.to_string()))?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "web proxy: an inspected origin connection ended");
                }
            });
            return Ok(SendRequest::H2(sender));
        }
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| Retry(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "web proxy: an inspected origin connection ended");
            }
        });
        Ok(SendRequest::H1(sender))
    }
}

enum Failure {
    /// Will fail again: every later request is told at once.
    Fatal(String),
    /// May work on the next request.
    Retry(String),
}
use Failure::{Fatal, Retry};

impl Proxy {
    /// Ends the client's TLS and serves the requests inside until either side closes.
    /// `recorder` is the `CONNECT`'s event, written when the tunnel ends.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn inspect<C>(
        self: Arc<Self>,
        client_io: C,
        first: Vec<u8>,
        target: HostPort,
        origin: TunnelStream,
        who: Who,
        client: IpAddr,
        mut recorder: Recorder,
    ) where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        recorder.inspected();
        let Some(inspector) = self.config.inspector.clone() else {
            return;
        };
        let now = self.clock.now();
        let config = match inspector.server_config(&target.host, now) {
            Ok(config) => config,
            Err(error) => {
                tracing::warn!(host = %target.host, %error, "web proxy: cannot mint a certificate");
                self.metrics.inspection_failed();
                recorder.error(format!("minting a certificate: {error}"));
                recorder.finish(0);
                return;
            }
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let accepting = acceptor.accept(Replay {
            first,
            at: 0,
            inner: client_io,
        });
        let tls = match tokio::time::timeout(self.config.idle_timeout, accepting).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                // Most often: a device without the school's CA installed.
                self.metrics.inspection_failed();
                tracing::info!(host = %target.host, %client, %error, "web proxy: the client refused the inspection certificate");
                recorder.error(format!("client TLS: {error}"));
                recorder.finish(0);
                return;
            }
            Err(_) => {
                recorder.error("client TLS: timed out".into());
                recorder.finish(0);
                return;
            }
        };
        self.metrics.inspected();
        let link = Arc::new(OriginLink {
            target: target.clone(),
            state: tokio::sync::Mutex::new(Link::Fresh(Some(origin))),
        });
        let proxy = Arc::clone(&self);
        let activity = Activity::new();
        let requests = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let proxy = Arc::clone(&proxy);
            let link = Arc::clone(&link);
            let who = who.clone();
            let target = target.clone();
            let busy = requests.begin();
            async move {
                let _busy = busy;
                Ok::<_, Infallible>(
                    proxy
                        .inspected_request(request, client, who, &target, link)
                        .await,
                )
            }
        });
        let stop = self.stop.clone();
        let outcome = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_header_list_size(
                    u32::try_from(self.config.max_header_bytes).unwrap_or(u32::MAX),
                )
                .serve_connection(TokioIo::new(tls), service);
            tokio::pin!(connection);
            tokio::select! {
                outcome = connection.as_mut() => outcome,
                () = activity.idle_for(self.config.idle_timeout) => {
                    // GOAWAY: the client opens a new tunnel when it needs one.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    Ok(())
                }
            }
        } else {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(self.config.idle_timeout)
                .max_buf_size(self.config.max_header_bytes.max(8192))
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), service);
            tokio::pin!(connection);
            tokio::select! {
                outcome = connection.as_mut() => outcome,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    Ok(())
                }
            }
        };
        if let Err(error) = outcome {
            tracing::debug!(%client, %error, "web proxy: inspected connection ended");
        }
        recorder.finish(0);
    }

    /// One request inside an inspected tunnel: decided and forwarded as `https://` on
    /// the tunnel's host (whatever its `Host` header says: the host decided is the one
    /// the tunnel and its TLS server name were allowed for).
    async fn inspected_request(
        self: Arc<Self>,
        request: Request<Incoming>,
        client: IpAddr,
        who: Who,
        tunnel: &HostPort,
        link: Arc<OriginLink>,
    ) -> Response<ProxyBody> {
        let target = WebTarget {
            host: tunnel.host.clone(),
            port: tunnel.port,
            path: normalise_path(request.uri().path()),
            query: request.uri().query().map(str::to_string),
            https: true,
        };
        self.web(request, client, who, target, Some(&link)).await
    }
}

/// The client's stream with the bytes already read from it (the ClientHello, for the
/// SNI check) read again first.
struct Replay<C> {
    first: Vec<u8>,
    at: usize,
    inner: C,
}

impl<C: AsyncRead + Unpin> AsyncRead for Replay<C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.first.len() {
            let n = buf.remaining().min(self.first.len() - self.at);
            let start = self.at;
            buf.put_slice(&self.first[start..start + n]);
            self.at += n;
            if self.at == self.first.len() {
                self.first = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for Replay<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
