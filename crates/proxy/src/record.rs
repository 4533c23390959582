//! Recording: every request becomes one `web` event through the event writer (which
//! never waits on the database), written when the response is over, so it carries the
//! bytes sent and whether the origin failed mid-way. Metadata is the host and path
//! without the query; the full URL, when it has a query, goes only to the content
//! table (privacy-gated, like every content), or, for a search on a known engine, the
//! decoded search terms instead.
//!
//! [`ProxyBody`] is the response body the proxy sends: a page of its own, or the
//! origin's body (the bytes held back for sniffing first), counting what it passes on
//! and recording the event when it ends or the client goes away.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hallpass_store::{Event, EventKind, EventWriter, detail_json};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::decide::{Outcome, verdict_name};
use crate::metrics::Metrics;

/// The rule an event names when a tunnel's TLS server name differs from its host.
pub const SNI_MISMATCH_RULE: &str = "sni-mismatch";
/// The rule an event names when `CONNECT` asks for a port not in `connect_ports`.
pub const CONNECT_PORT_RULE: &str = "connect-port";

/// One request's event, filled in as the request goes, written once by [`Recorder::finish`].
pub struct Recorder {
    writer: EventWriter,
    event: Event,
    method: String,
    port: u16,
    reference: String,
    status: u16,
    /// Time to the origin's response headers.
    first_byte: Option<Duration>,
    file_type: Option<String>,
    error: Option<String>,
    tunnel: bool,
    inspected: bool,
    /// The search engine whose search terms are the event's content.
    search: Option<&'static str>,
}

impl Recorder {
    /// `target` is `host/path` (or `host:port` for a tunnel); `url` the full URL, kept as
    /// content only when it says more than `target` (a query string).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        writer: EventWriter,
        at: jiff::Timestamp,
        client: std::net::IpAddr,
        who: &hallpass_engine::Who,
        method: &str,
        target: String,
        port: u16,
        url: Option<String>,
        reference: String,
    ) -> Recorder {
        let mut event = Event::new(EventKind::Web, at, target);
        event.client_ip = Some(client);
        if let Some(person) = &who.person {
            event.person = Some(person.username.to_string());
            event.year_group = person.year_group.clone();
        }
        event.content = url;
        Recorder {
            writer,
            event,
            method: method.to_string(),
            port,
            reference,
            status: 0,
            first_byte: None,
            file_type: None,
            error: None,
            tunnel: false,
            inspected: false,
            search: None,
        }
    }

    /// The policy's decision (the last one made for this request stands).
    pub fn decided(&mut self, outcome: &Outcome, categories: Vec<String>) {
        self.event.verdict = Cow::Borrowed(verdict_name(outcome.verdict));
        self.event.rule.clone_from(&outcome.rule);
        self.event.document.clone_from(&outcome.document);
        self.event.clause.clone_from(&outcome.clause);
        self.event.categories = categories;
    }

    pub fn status(&mut self, status: u16) {
        self.status = status;
    }

    pub fn first_byte(&mut self, after: Duration) {
        self.first_byte = Some(after);
    }

    pub fn file_type(&mut self, file_type: String) {
        self.file_type = Some(file_type);
    }

    pub fn error(&mut self, error: String) {
        self.error = Some(error);
    }

    /// Refused by the proxy's own rule, not the policy's: `rule` names it in the event
    /// (`sni-mismatch` for a tunnel whose TLS server name is not the host it was allowed
    /// for, `connect-port` for a tunnel to a port not in `connect_ports`).
    pub fn refused_by_proxy(&mut self, rule: &str, why: String) {
        self.event.verdict = Cow::Borrowed(hallpass_store::VERDICT_BLOCK);
        self.event.rule = Some(rule.to_string());
        self.event.document = None;
        self.event.clause = None;
        self.error = Some(why);
    }

    /// A request inside (or the `CONNECT` of) an inspected tunnel.
    pub fn inspected(&mut self) {
        self.inspected = true;
    }

    /// A search on `engine`: its decoded `terms` are the content (instead of the full
    /// URL: what the safeguarding follower reads), privacy-gated as every content is.
    pub fn search(&mut self, engine: &'static str, terms: String) {
        self.search = Some(engine);
        self.event.content = Some(terms);
    }

    pub fn tunnel(&mut self) {
        self.tunnel = true;
    }

    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// Writes the event with `bytes` sent to the client.
    pub fn finish(mut self, bytes: u64) {
        self.event.bytes = Some(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.event.detail = detail_json(|o| {
            o.str("method", &self.method);
            o.u64("status", u64::from(self.status));
            o.u64("port", u64::from(self.port));
            o.str("ref", &self.reference);
            if let Some(first_byte) = self.first_byte {
                o.u64(
                    "ttfb_ms",
                    u64::try_from(first_byte.as_millis()).unwrap_or(u64::MAX),
                );
            }
            if let Some(file_type) = &self.file_type {
                o.str("file_type", file_type);
            }
            if let Some(error) = &self.error {
                o.str("error", error);
            }
            if self.tunnel {
                o.bool("tunnel", true);
            }
            if self.inspected {
                o.bool("inspected", true);
            }
            if let Some(engine) = self.search {
                o.str("search", engine);
            }
        });
        self.writer.record(self.event);
    }
}

/// A response body: the proxy's own page, or the origin's.
pub enum ProxyBody {
    /// A page of the proxy's own; the recorder (if any) is finished when it is sent.
    Page {
        data: Option<Bytes>,
        recorder: Option<Recorder>,
    },
    Origin(OriginBody),
}

impl ProxyBody {
    pub fn page(data: impl Into<Bytes>, recorder: Option<Recorder>) -> ProxyBody {
        ProxyBody::Page {
            data: Some(data.into()),
            recorder,
        }
    }

    pub fn empty(recorder: Option<Recorder>) -> ProxyBody {
        ProxyBody::Page {
            data: None,
            recorder,
        }
    }
}

/// The origin's body: frames already read (for sniffing) first, then the rest.
pub struct OriginBody {
    held: VecDeque<Frame<Bytes>>,
    /// `None` once the origin's body has ended.
    rest: Option<Incoming>,
    sent: u64,
    recorder: Option<Recorder>,
    /// Counts an origin that fails mid-response.
    metrics: Arc<Metrics>,
    /// Fires when the proxy has waited `stall_after` for the origin's next frame. Armed
    /// when a wait begins, not when a frame passes: a slow client (which stops hyper
    /// from polling) is not a stalled origin.
    stall: Pin<Box<tokio::time::Sleep>>,
    stall_after: Duration,
    waiting: bool,
}

/// What a body error is to hyper: the origin's, or the stall timeout's.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

impl OriginBody {
    pub fn new(
        held: VecDeque<Frame<Bytes>>,
        rest: Option<Incoming>,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        stall_after: Duration,
    ) -> OriginBody {
        OriginBody {
            held,
            rest,
            sent: 0,
            recorder: Some(recorder),
            metrics,
            stall: Box::pin(tokio::time::sleep(stall_after)),
            stall_after,
            waiting: false,
        }
    }

    fn finish(&mut self, error: Option<String>) {
        if let Some(mut recorder) = self.recorder.take() {
            if let Some(error) = error {
                recorder.error(error);
            }
            recorder.finish(self.sent);
        }
    }
}

impl Drop for OriginBody {
    fn drop(&mut self) {
        // Dropped before its end: the client went away (or the server stopped).
        let early = self.rest.is_some() || !self.held.is_empty();
        self.finish(early.then(|| "client closed before the end".to_string()));
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // A page never polled (the client went away, or a HEAD request): nothing sent.
        if let ProxyBody::Page { recorder, .. } = self
            && let Some(recorder) = recorder.take()
        {
            recorder.finish(0);
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ProxyBody::Page { data, recorder } => {
                let frame = data.take();
                if let Some(recorder) = recorder.take() {
                    recorder.finish(frame.as_ref().map_or(0, |d| d.len() as u64));
                }
                Poll::Ready(frame.map(|d| Ok(Frame::data(d))))
            }
            ProxyBody::Origin(origin) => origin.poll_next(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Page { data, .. } => data.is_none(),
            ProxyBody::Origin(origin) => origin.held.is_empty() && origin.rest.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Page { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            ProxyBody::Origin(origin) => {
                let held: u64 = origin
                    .held
                    .iter()
                    .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
                    .sum();
                match &origin.rest {
                    None => SizeHint::with_exact(held),
                    Some(rest) => {
                        let inner = rest.size_hint();
                        let mut hint = SizeHint::new();
                        hint.set_lower(inner.lower().saturating_add(held));
                        if let Some(upper) = inner.upper() {
                            hint.set_upper(upper.saturating_add(held));
                        }
                        hint
                    }
                }
            }
        }
    }
}

impl OriginBody {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Some(frame) = self.held.pop_front() {
            if let Some(data) = frame.data_ref() {
                self.sent += data.len() as u64;
            }
            if self.held.is_empty() && self.rest.is_none() {
                self.finish(None);
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        let Some(rest) = self.rest.as_mut() else {
            self.finish(None);
            return Poll::Ready(None);
        };
        match Pin::new(rest).poll_frame(cx) {
            Poll::Pending => {
                if !self.waiting {
                    self.waiting = true;
                    let deadline = tokio::time::Instant::now() + self.stall_after;
                    self.stall.as_mut().reset(deadline);
                }
                if self.stall.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.rest = None;
                self.metrics.origin_error();
                let why = format!(
                    "origin stalled mid-response: nothing for {} s",
                    self.stall_after.as_secs()
                );
                tracing::warn!("web proxy: {why}");
                self.finish(Some(why.clone()));
                Poll::Ready(Some(Err(why.into())))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
                self.waiting = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                self.rest = None;
                self.finish(None);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                self.rest = None;
                self.metrics.origin_error();
                tracing::warn!(%error, "web proxy: the origin failed mid-response");
                self.finish(Some(format!("origin failed mid-response: {error}")));
                Poll::Ready(Some(Err(error.into())))
            }
        }
    }
}
