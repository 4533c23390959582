//! One request through the proxy, in this order:
//!
//! 1. `CONNECT host:port`: the tunnel module.
//! 2. A request to the proxy itself (origin form): `proxy.pac` / `wpad.dat`, else `400`.
//! 3. An absolute-form `http://` URL: normalise, identify, categorise the URL, decide with
//!    the path's extension; a block is the block page.
//! 4. Forward (hop-by-hop headers dropped, `Host` set from the URL, `Via` added; a
//!    request already carrying our `Via` is a loop), wait for the head.
//! 5. Decide again on the response's `Content-Type` and on the first bytes' type; a
//!    block is the block page, otherwise the body streams through, recorded at its end.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use hallpass_engine::{Snapshot, Who};
use hallpass_policy::FileType;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body as _, Frame};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;

use crate::auth::{challenge, parse_basic};
use crate::decide::{Outcome, categorise, decide};
use crate::inspect::OriginLink;
use crate::page::{BlockView, block_page, pac_script, safe_authority};
use crate::record::{OriginBody, ProxyBody, Recorder};
use crate::search::{enforce_safe_search, engine_of, search_terms};
use crate::server::Proxy;
use crate::sniff::{SNIFF_BYTES, content_type_mime, first_zip_entry, sniff};
use crate::target::{WebTarget, extension_of, parse_absolute};

/// Our `Via` token: seeing it on a request means the request came round again.
const VIA: &str = "1.1 hallpass";

/// Headers that belong to one connection (RFC 9110 §7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// Marks a response as the proxy's refusal (counted there, not as an allow).
#[derive(Clone, Copy)]
struct Refused;

/// What one request was decided on, kept for the response-side decision.
struct Asked {
    snapshot: Arc<Snapshot>,
    who: Who,
    target: WebTarget,
    path_and_query: String,
    categories: hallpass_catalog::CategorySet,
    now: jiff::Timestamp,
}

impl Proxy {
    pub(crate) async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        client: IpAddr,
    ) -> Response<ProxyBody> {
        if request.method() == Method::CONNECT {
            return self.connect(request, client).await;
        }
        if request.uri().scheme().is_none() {
            return self.local(&request);
        }
        let target = match parse_absolute(request.uri()) {
            Ok(target) => target,
            Err(error) => return self.bad_request(&error.to_string()),
        };
        if request
            .headers()
            .get_all(header::VIA)
            .iter()
            .any(|via| via.to_str().is_ok_and(|v| v.contains(VIA)))
        {
            return plain(
                StatusCode::LOOP_DETECTED,
                "This request came back to the proxy that sent it (a forwarding loop).\n",
                None,
            );
        }
        let who = match self
            .identify(&request, client, &self.engine.current())
            .await
        {
            Ok(who) => who,
            Err(challenge) => return challenge,
        };
        self.web(request, client, who, target, None).await
    }

    /// A request for `target` by `who`: decided on the full URL and its extension (a
    /// block is the block page), safe search set on known engines, forwarded through the
    /// pooled client (or `inspected`, the origin side of an inspected tunnel), decided
    /// again on the response's type.
    pub(crate) async fn web(
        &self,
        mut request: Request<Incoming>,
        client: IpAddr,
        who: Who,
        target: WebTarget,
        inspected: Option<&OriginLink>,
    ) -> Response<ProxyBody> {
        let snapshot = self.engine.current();
        let now = self.clock.now();
        let path_and_query = target.path_and_query();
        let categories = categorise(&snapshot, &target.host, Some(&path_and_query));
        let extension = target.extension().map(str::to_string);
        let outcome = decide(
            &snapshot,
            &who,
            &target.host,
            Some(&path_and_query),
            categories,
            extension.as_deref().map(|extension| FileType {
                extension: Some(extension),
                mime: None,
            }),
            now,
        );
        let mut recorder = Recorder::new(
            self.writer.clone(),
            now,
            client,
            &who,
            request.method().as_str(),
            target.record_target(),
            target.port,
            target.query.as_ref().map(|_| target.url()),
            self.next_reference(now),
        );
        if inspected.is_some() {
            recorder.inspected();
        }
        // Recorded whatever the verdict: a refused search says as much as an allowed one.
        let engine = engine_of(&target.host);
        if let Some(engine) = engine
            && let Some(terms) = search_terms(engine, &target.path, target.query.as_deref())
        {
            recorder.search(engine.name(), terms);
        }
        let mut asked = Asked {
            snapshot,
            who,
            target,
            path_and_query,
            categories,
            now,
        };
        if outcome.refused() {
            let file_type = extension
                .as_ref()
                .filter(|_| decided_on_type(&asked, &outcome))
                .map(|extension| format!(".{extension}"));
            return self.refuse(&asked, &outcome, recorder, file_type);
        }
        recorder.decided(&outcome, asked.snapshot.category_names(&categories));
        if let Some(engine) = engine {
            let settings = asked.snapshot.policy.safe_search(asked.who.groups);
            if enforce_safe_search(engine, &settings, &mut request, &mut asked.target) {
                self.metrics.safe_search_enforced();
            }
        }
        let response = self.forward(request, asked, recorder, inspected).await;
        // Counted once the response-side decision is made: a download refused on its
        // type counts as a block (in `refuse`), not as an allow too.
        if response.extensions().get::<Refused>().is_none() {
            self.metrics.decided(outcome.verdict);
        }
        response
    }

    /// Sends the request on, then decides on what came back.
    async fn forward(
        &self,
        mut request: Request<Incoming>,
        asked: Asked,
        mut recorder: Recorder,
        inspected: Option<&OriginLink>,
    ) -> Response<ProxyBody> {
        strip_hop_by_hop(request.headers_mut());
        let authority = asked.target.authority();
        // The origin must see the host that was decided, not a Host header naming another.
        if let Ok(host) = HeaderValue::from_str(&authority) {
            request.headers_mut().insert(header::HOST, host);
        }
        request
            .headers_mut()
            .append(header::VIA, HeaderValue::from_static(VIA));
        let is_head = request.method() == Method::HEAD;
        let started = self.clock.instant();
        let sending = async {
            match (inspected, &self.parent_pool) {
                (Some(link), _) => link.send(self, request).await,
                (None, Some(pool)) => pool.send(request).await,
                (None, None) => self
                    .client
                    .request(request)
                    .await
                    .map_err(|error| error_chain(&error)),
            }
        };
        let sent = tokio::time::timeout(self.config.response_timeout, sending);
        let response = match sent.await {
            Ok(Ok(response)) => response,
            Ok(Err(why)) => {
                self.metrics.origin_error();
                tracing::info!(target = %asked.target.record_target(), error = %why, "web proxy: origin unreachable");
                recorder.error(why.clone());
                recorder.status(502);
                return plain(
                    StatusCode::BAD_GATEWAY,
                    &format!("The proxy could not reach {}: {why}\n", asked.target.host),
                    Some(recorder),
                );
            }
            Err(_) => {
                self.metrics.origin_error();
                recorder.error("no response in time".into());
                recorder.status(504);
                return plain(
                    StatusCode::GATEWAY_TIMEOUT,
                    &format!("{} did not answer in time.\n", asked.target.host),
                    Some(recorder),
                );
            }
        };
        recorder.first_byte(self.clock.instant().saturating_duration_since(started));
        let (mut parts, mut body) = response.into_parts();
        recorder.status(parts.status.as_u16());
        let mime = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(content_type_mime);
        let mut held = VecDeque::new();
        let mut ended = is_head || body.is_end_stream();
        if parts.status.is_success() && !ended {
            match self.read_head(&mut body, &mut held).await {
                Ok(done) => ended = done,
                Err(why) => {
                    self.metrics.origin_error();
                    tracing::warn!(target = %asked.target.record_target(), error = %why, "web proxy: the origin failed before its body began");
                    recorder.error(why.clone());
                    recorder.status(502);
                    return plain(StatusCode::BAD_GATEWAY, &format!("{why}\n"), Some(recorder));
                }
            }
        }
        let head: Vec<u8> = held
            .iter()
            .filter_map(Frame::data_ref)
            .flat_map(|d| d.iter().copied())
            .take(SNIFF_BYTES)
            .collect();
        let sniffed = sniff(&head);
        if let Some(sniffed) = sniffed {
            recorder.file_type(format!("{} ({})", sniffed.extension, sniffed.mime));
        }
        // Each type the response may be, with how the block page names it.
        let extension = asked.target.extension();
        let mut candidates: Vec<(Option<&str>, Option<&str>, String)> = Vec::new();
        if let Some(mime) = mime.as_deref() {
            let shown = match extension {
                Some(extension) => format!("{extension} ({mime})"),
                None => mime.to_string(),
            };
            candidates.push((extension, Some(mime), shown));
        }
        if let Some(sniffed) = sniffed {
            let shown = format!("{} ({})", sniffed.extension, sniffed.mime);
            candidates.push((Some(sniffed.extension), Some(sniffed.mime), shown));
        }
        // An archive whose first file is a program is a download of that program.
        if let Some(inner) = first_zip_entry(&head)
            && let Some(inner_extension) = extension_of(inner)
        {
            let shown = format!("zip holding {inner}");
            candidates.push((Some(inner_extension), Some("application/zip"), shown));
        }
        for (extension, mime, shown) in candidates {
            let outcome = decide(
                &asked.snapshot,
                &asked.who,
                &asked.target.host,
                Some(&asked.path_and_query),
                asked.categories,
                Some(FileType { extension, mime }),
                asked.now,
            );
            if outcome.refused() {
                // The origin's body is dropped unread: its connection is not reused.
                return self.refuse(&asked, &outcome, recorder, Some(shown));
            }
        }
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::TRANSFER_ENCODING);
        parts
            .headers
            .append(header::VIA, HeaderValue::from_static(VIA));
        let rest = (!ended).then_some(body);
        let body = OriginBody::new(
            held,
            rest,
            recorder,
            Arc::clone(&self.metrics),
            self.config.response_timeout,
        );
        Response::from_parts(parts, ProxyBody::Origin(body))
    }

    /// Reads frames until [`SNIFF_BYTES`] are held or the body ends (`Ok(true)`).
    async fn read_head(
        &self,
        body: &mut Incoming,
        held: &mut VecDeque<Frame<Bytes>>,
    ) -> Result<bool, String> {
        let mut bytes = 0;
        while bytes < SNIFF_BYTES {
            match tokio::time::timeout(self.config.response_timeout, body.frame()).await {
                Err(_) => return Err("the origin stopped sending".into()),
                Ok(None) => return Ok(true),
                Ok(Some(Err(error))) => return Err(format!("the origin failed: {error}")),
                Ok(Some(Ok(frame))) => {
                    bytes += frame.data_ref().map_or(0, Bytes::len);
                    let trailers = frame.is_trailers();
                    held.push_back(frame);
                    if trailers {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(body.is_end_stream())
    }

    /// The block page (or warning page) for a refused URL or download.
    fn refuse(
        &self,
        asked: &Asked,
        outcome: &Outcome,
        mut recorder: Recorder,
        file_type: Option<String>,
    ) -> Response<ProxyBody> {
        self.metrics.decided(outcome.verdict);
        if file_type.is_some() {
            self.metrics.file_type_refused();
            if let Some(file_type) = &file_type {
                recorder.file_type(file_type.clone());
            }
        }
        let categories = asked.snapshot.category_names(&outcome.categories);
        self.metrics.refused_in(&categories);
        recorder.decided(outcome, categories.clone());
        recorder.status(403);
        let view = BlockView {
            school: asked.snapshot.policy.school_name().to_string(),
            verdict: crate::decide::verdict_name(outcome.verdict),
            url: asked.target.url(),
            message: outcome.message.clone(),
            document: outcome.document.clone().unwrap_or_default(),
            clause: outcome.clause.clone().unwrap_or_default(),
            categories,
            person: asked
                .who
                .person
                .as_ref()
                .map(|p| p.username.to_string())
                .unwrap_or_default(),
            file_type,
            reference: recorder.reference().to_string(),
            portal: self.config.portal.clone(),
        };
        let html = block_page(&view);
        let mut response = Response::new(ProxyBody::page(html, Some(recorder)));
        response.extensions_mut().insert(Refused);
        *response.status_mut() = StatusCode::FORBIDDEN;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    /// Who is asking: the credentials sent (with authentication on), else the session
    /// at the address; with authentication on and neither, the `407` challenge.
    pub(crate) async fn identify(
        &self,
        request: &Request<Incoming>,
        client: IpAddr,
        snapshot: &Snapshot,
    ) -> Result<Who, Response<ProxyBody>> {
        let Some(authenticator) = &self.authenticator else {
            return Ok(snapshot.identify(client));
        };
        let credentials = request
            .headers()
            .get(header::PROXY_AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_basic);
        let Some((username, password)) = credentials else {
            let who = snapshot.identify(client);
            return match who.person {
                Some(_) => Ok(who),
                None => Err(self.challenge(snapshot, "Sign in to use the internet")),
            };
        };
        let now = self.clock.instant();
        let person = match self.remembered.get(&username, &password, now) {
            Some(person) => Some(person),
            None => {
                let checked = authenticator
                    .authenticate(username.clone(), password.clone())
                    .await
                    .map(Arc::new);
                if let Some(person) = &checked {
                    self.remembered
                        .put(&username, &password, Arc::clone(person), now);
                }
                checked
            }
        };
        match person {
            Some(person) => {
                // A pending declaration restricts, and then no network group is added
                // (as for a logon session).
                let restricted = person.restricted_groups(&snapshot.policy).is_some();
                let groups = if restricted {
                    person.groups(&snapshot.policy)
                } else {
                    person.groups(&snapshot.policy) | snapshot.policy.network_groups(client)
                };
                Ok(Who {
                    groups,
                    person: Some(person),
                    restricted,
                })
            }
            None => {
                tracing::info!(%client, %username, "web proxy: sign-in refused");
                Err(self.challenge(snapshot, "The username or password was not right"))
            }
        }
    }

    fn challenge(&self, snapshot: &Snapshot, why: &str) -> Response<ProxyBody> {
        self.metrics.auth_challenge();
        let realm = format!("{} web proxy", snapshot.policy.school_name());
        let mut response = plain(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            &format!("{why}: use your school account.\n"),
            None,
        );
        if let Ok(value) = HeaderValue::from_str(&challenge(&realm)) {
            response
                .headers_mut()
                .insert(header::PROXY_AUTHENTICATE, value);
        }
        response
    }

    /// A request addressed to the proxy itself: the PAC file, or an explanation.
    fn local(&self, request: &Request<Incoming>) -> Response<ProxyBody> {
        let path = request.uri().path();
        if request.method() == Method::GET && matches!(path, "/proxy.pac" | "/wpad.dat") {
            self.metrics.pac();
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| safe_authority(h))
                .map_or_else(|| self.local.to_string(), str::to_string);
            let mut response = Response::new(ProxyBody::page(pac_script(&host), None));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ns-proxy-autoconfig"),
            );
            return response;
        }
        self.bad_request(
            "This is the school's web proxy. Set it as the proxy in your browser or system \
             settings, or use automatic configuration from /proxy.pac on this address.",
        )
    }

    pub(crate) fn bad_request(&self, why: &str) -> Response<ProxyBody> {
        self.metrics.bad_request();
        plain(StatusCode::BAD_REQUEST, &format!("{why}\n"), None)
    }

    /// A reference unique within this run: the start second and a sequence number.
    pub(crate) fn next_reference(&self, now: jiff::Timestamp) -> String {
        let n = self.references.fetch_add(1, Ordering::Relaxed);
        format!("W{:x}-{n}", now.as_second())
    }
}

/// Whether `outcome` came from a `file_types` rule: the same request without its type
/// decides otherwise.
fn decided_on_type(asked: &Asked, outcome: &Outcome) -> bool {
    let without = decide(
        &asked.snapshot,
        &asked.who,
        &asked.target.host,
        Some(&asked.path_and_query),
        asked.categories,
        None,
        asked.now,
    );
    without.rule != outcome.rule || without.verdict != outcome.verdict
}

pub(crate) fn plain(
    status: StatusCode,
    text: &str,
    recorder: Option<Recorder>,
) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::page(text.to_string(), recorder));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Removes hop-by-hop headers, and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// An error and its causes on one line (hyper's own message is often just "client error").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, X-Secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("proxy-authorization", HeaderValue::from_static("Basic x"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::ACCEPT));
    }
}
