//! The proxy's question to the policy: the engine's snapshot, the client's identity by
//! address (as the DNS filter and the block page identify it), and the URL's categories
//! from the catalog's host, URL and expression lists. No IO: the snapshot is in memory.

use std::net::IpAddr;

use hallpass_catalog::CategorySet;
use hallpass_engine::{Snapshot, Who};
use hallpass_policy::{CategoryMask, FileType, Identity, Request, Verdict};

/// What the policy decided for one request, owned (it outlives the snapshot borrow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub rule: Option<String>,
    pub document: Option<String>,
    pub clause: Option<String>,
    pub message: String,
    pub categories: CategorySet,
}

impl Outcome {
    /// Whether the proxy refuses it. A warning is refused too, with its page: as with the
    /// DNS filter's block page, continuing is the block page service's business, and an
    /// acknowledgement there lifts the warning here.
    pub fn refused(&self) -> bool {
        matches!(self.verdict, Verdict::Block | Verdict::Warn)
    }
}

/// The person (if any) and groups at `client`: the session's, else the network's, else
/// the policy's unidentified group.
pub fn identify(snapshot: &Snapshot, client: IpAddr) -> Who {
    snapshot.identify(client)
}

/// Decides `host` + `path_and_query` (none for a `CONNECT`) with an optional file type.
/// `categories` are the URL's (see [`categorise`]), looked up once per request.
pub fn decide(
    snapshot: &Snapshot,
    who: &Who,
    host: &str,
    path_and_query: Option<&str>,
    categories: CategorySet,
    file_type: Option<FileType<'_>>,
    now: jiff::Timestamp,
) -> Outcome {
    let decision = snapshot.policy.decide(
        &Request {
            identity: Identity::Groups(who.groups),
            person: who.person.as_ref().map(|person| &*person.username),
            host,
            path: path_and_query,
            categories: CategoryMask::from_bits(categories.bits()),
            file_type,
        },
        &snapshot.live,
        now,
    );
    Outcome {
        verdict: decision.verdict,
        rule: decision.rule.map(|rule| rule.id.to_string()),
        document: decision.document.map(str::to_string),
        clause: decision.clause.map(str::to_string),
        message: decision.message.to_string(),
        categories,
    }
}

/// The categories of a URL (`host` and `path_and_query`) or, without a path, of a host.
pub fn categorise(snapshot: &Snapshot, host: &str, path_and_query: Option<&str>) -> CategorySet {
    match path_and_query {
        Some(path) => snapshot.catalog.lookup_url(&format!("{host}{path}")),
        None => snapshot.catalog.lookup_host(host),
    }
}

/// The verdict as events record it.
pub fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "allow",
        Verdict::Block => hallpass_store::VERDICT_BLOCK,
        Verdict::Warn => "warn",
    }
}
