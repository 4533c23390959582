//! `CONNECT host:port`, the proxy's view of HTTPS: parse the target, check the port,
//! decide on the host, open the origin side (directly or through the parent), answer
//! `200`, then look at the client's first bytes: a TLS ClientHello naming another
//! server than the host allowed closes the tunnel (circumvention). Otherwise bytes are
//! copied both ways until either side closes; the event is written then.

use std::net::IpAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::decide::{categorise, decide};
use crate::handle::plain;
use crate::origin::{TunnelStream, open_tunnel};
use crate::page::connect_refusal;
use crate::record::{CONNECT_PORT_RULE, ProxyBody, Recorder, SNI_MISMATCH_RULE};
use crate::server::Proxy;
use crate::sni::{MAX_HELLO_BYTES, Peek, peek};
use crate::target::{HostPort, parse_connect};

impl Proxy {
    /// `CONNECT host:port`: decided on the host, tunnelled when allowed.
    pub(crate) async fn connect(
        self: Arc<Self>,
        request: Request<Incoming>,
        client: IpAddr,
    ) -> Response<ProxyBody> {
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let target = match parse_connect(&authority) {
            Ok(target) => target,
            Err(error) => return self.bad_request(&error.to_string()),
        };
        let snapshot = self.engine.current();
        let now = self.clock.now();
        let who = match self.identify(&request, client, &snapshot).await {
            Ok(who) => who,
            Err(challenge) => return challenge,
        };
        let mut recorder = Recorder::new(
            self.writer.clone(),
            now,
            client,
            &who,
            "CONNECT",
            target.authority(),
            target.port,
            None,
            self.next_reference(now),
        );
        recorder.tunnel();
        if !self.config.connect_ports.contains(&target.port) {
            self.metrics.decided(hallpass_policy::Verdict::Block);
            recorder.status(403);
            recorder.refused_by_proxy(
                CONNECT_PORT_RULE,
                format!("CONNECT to port {} is not allowed", target.port),
            );
            let ports: Vec<String> = self
                .config
                .connect_ports
                .iter()
                .map(u16::to_string)
                .collect();
            return plain(
                StatusCode::FORBIDDEN,
                &format!(
                    "CONNECT is allowed to port {} only; {} was refused.\n",
                    ports.join(", "),
                    target.port
                ),
                Some(recorder),
            );
        }
        let categories = categorise(&snapshot, &target.host, None);
        let outcome = decide(&snapshot, &who, &target.host, None, categories, None, now);
        self.metrics.decided(outcome.verdict);
        let names = snapshot.category_names(&categories);
        if outcome.refused() {
            self.metrics.refused_in(&names);
        }
        let inspected = !outcome.refused()
            && self
                .config
                .inspector
                .as_ref()
                .is_some_and(|inspector| inspector.inspects(&target.host, &names));
        recorder.decided(&outcome, names);
        if outcome.refused() {
            recorder.status(403);
            let text = connect_refusal(
                &target.host,
                outcome.document.as_deref().unwrap_or(""),
                outcome.clause.as_deref().unwrap_or(""),
                &outcome.message,
                recorder.reference(),
            );
            return plain(StatusCode::FORBIDDEN, &text, Some(recorder));
        }
        let opened = open_tunnel(
            &target,
            &self.resolver,
            self.config.parent.as_ref(),
            self.config.connect_timeout,
        )
        .await;
        let origin = match opened {
            Ok(origin) => origin,
            Err(error) => {
                self.metrics.origin_error();
                recorder.status(502);
                recorder.error(error.to_string());
                return plain(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "The proxy could not open a tunnel to {}: {error}\n",
                        target.authority()
                    ),
                    Some(recorder),
                );
            }
        };
        self.metrics.tunnel();
        recorder.status(200);
        let proxy = Arc::clone(&self);
        let inspect = inspected.then_some((who, client));
        tokio::spawn(async move {
            proxy
                .tunnel(request, target, origin, recorder, inspect)
                .await;
        });
        Response::new(ProxyBody::empty(None))
    }

    /// Checks the tunnel's first bytes (a TLS ClientHello must name the host the tunnel
    /// was allowed for), then copies bytes both ways until either side closes or the
    /// stop signal; or, for an inspected host (`inspect`: who asked, from where), ends
    /// its TLS and serves the requests inside.
    async fn tunnel(
        self: Arc<Self>,
        request: Request<Incoming>,
        target: HostPort,
        origin: TunnelStream,
        mut recorder: Recorder,
        inspect: Option<(hallpass_engine::Who, IpAddr)>,
    ) {
        let upgraded = match hyper::upgrade::on(request).await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                recorder.error(format!("client upgrade failed: {error}"));
                recorder.finish(0);
                return;
            }
        };
        let mut client = hyper_util::rt::TokioIo::new(upgraded);
        let first = match self.first_bytes(&mut client).await {
            Ok(first) => first,
            Err(error) => {
                recorder.error(format!("tunnel ended before it began: {error}"));
                recorder.finish(0);
                return;
            }
        };
        if let Peek::ClientHello {
            server_name: Some(server_name),
        } = peek(&first)
            && server_name != target.host
            && target.host.parse::<IpAddr>().is_err()
        {
            self.metrics.sni_mismatch();
            tracing::warn!(
                connect = %target.host, server_name = %server_name,
                "web proxy: TLS server name differs from the CONNECT host (circumvention); tunnel closed"
            );
            recorder.refused_by_proxy(
                SNI_MISMATCH_RULE,
                format!(
                    "TLS server name {server_name} differs from the CONNECT host {}",
                    target.host
                ),
            );
            recorder.finish(0);
            return;
        }
        if let Some((who, from)) = inspect {
            self.inspect(client, first, target, origin, who, from, recorder)
                .await;
            return;
        }
        let copied = match origin {
            TunnelStream::Direct(stream) => self.pipe(&mut client, stream, &first).await,
            TunnelStream::Parent(stream) => self.pipe(&mut client, stream, &first).await,
        };
        match copied {
            Ok(down) => recorder.finish(down),
            Err(error) => {
                recorder.error(format!("tunnel ended: {error}"));
                recorder.finish(0);
            }
        }
    }

    /// What the client sends first: until a ClientHello is complete, it is clearly not
    /// TLS, [`MAX_HELLO_BYTES`] or the idle timeout (a client that waits for the server
    /// to speak first gets its tunnel after that).
    async fn first_bytes<S>(&self, client: &mut S) -> std::io::Result<Vec<u8>>
    where
        S: tokio::io::AsyncRead + Unpin,
    {
        use tokio::io::AsyncReadExt as _;
        let mut first = Vec::new();
        let mut chunk = [0u8; 4096];
        while first.len() < MAX_HELLO_BYTES && peek(&first) == Peek::Incomplete {
            match tokio::time::timeout(self.config.idle_timeout, client.read(&mut chunk)).await {
                Err(_) => break,
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => first.extend_from_slice(&chunk[..n]),
                Ok(Err(error)) => return Err(error),
            }
        }
        Ok(first)
    }

    /// Sends `first` on, then copies both ways; the bytes sent to the client.
    async fn pipe<C, O>(&self, client: &mut C, mut origin: O, first: &[u8]) -> std::io::Result<u64>
    where
        C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
        O: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        use tokio::io::AsyncWriteExt as _;
        origin.write_all(first).await?;
        tokio::select! {
            copied = tokio::io::copy_bidirectional(client, &mut origin) => copied.map(|(_up, down)| down),
            () = self.stop.cancelled() => Ok(0),
        }
    }
}
