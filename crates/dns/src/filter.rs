//! The two seams between the resolver and the rest of Hallpass: a [`QueryFilter`] that
//! decides each question and a [`QueryLog`] that is told what happened. Both are called
//! on the hot path, once per query, and must be cheap and never block.

use std::any::Any;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A DNS record type number (`1` = A, `28` = AAAA, ...). The raw number keeps the hot
/// path free of conversions; see [`crate::RecordType`] (hickory's) for names.
pub type Qtype = u16;

/// Decides one question. Implemented by the integrator with the policy engine.
///
/// `qname` is lowercase, without the trailing dot (the root is `""`); bytes outside
/// printable ASCII, dots and backslashes inside a label arrive escaped as `\DDD`.
/// `check` is called on the resolver's hot path: it must not block, and should not
/// allocate (return `Arc`s prepared in advance for reasons and payloads).
pub trait QueryFilter: Send + Sync + 'static {
    /// An opaque payload passed, untouched, from the decision to the [`QueryRecord`]
    /// (e.g. the policy rule, clause and categories), so the log need not re-decide.
    /// Use `()` when there is nothing to pass.
    type Info: Send + Sync + 'static;

    fn check(&self, client: IpAddr, qname: &str, qtype: Qtype) -> FilterDecision<Self::Info>;
}

impl<T: QueryFilter> QueryFilter for Arc<T> {
    type Info = T::Info;
    #[inline]
    fn check(&self, client: IpAddr, qname: &str, qtype: Qtype) -> FilterDecision<T::Info> {
        (**self).check(client, qname, qtype)
    }
}

/// What the filter decided, plus its opaque payload for the log.
#[derive(Clone, Debug)]
pub struct FilterDecision<I> {
    pub verdict: FilterVerdict,
    pub info: Option<I>,
}

impl<I> FilterDecision<I> {
    /// Allow, with no payload.
    #[inline]
    pub fn allow() -> Self {
        FilterDecision {
            verdict: FilterVerdict::Allow,
            info: None,
        }
    }
    #[inline]
    pub fn new(verdict: FilterVerdict) -> Self {
        FilterDecision {
            verdict,
            info: None,
        }
    }
    /// Attaches the payload handed to [`QueryLog::record`].
    #[inline]
    pub fn with_info(mut self, info: I) -> Self {
        self.info = Some(info);
        self
    }
}

/// The filter's answer for one question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterVerdict {
    /// Resolve normally (cache, then upstream).
    Allow,
    /// Answer with a synthesised block response; never cached as upstream data.
    Block {
        mode: BlockMode,
        /// TTL of the synthesised records (keep it short so approvals land quickly).
        ttl: u32,
        /// Extended DNS Error text (RFC 8914), e.g. citing the policy clause. Sent only
        /// to clients that used EDNS.
        reason: Arc<str>,
        ede: EdeCode,
    },
    /// Answer with a CNAME to `target` followed by the target's records, resolved
    /// through the cache and upstream (see [`crate::safe_search::target_for`]).
    SafeSearch { target: Arc<str> },
    /// The filter cannot (or will not) decide: answer REFUSED with the EDE text. This is
    /// how "fail closed" is expressed.
    Refuse { reason: Arc<str>, ede: EdeCode },
}

/// How a blocked name is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockMode {
    /// NXDOMAIN with a synthetic SOA in the authority section.
    Nxdomain,
    /// `0.0.0.0` for A, `::` for AAAA, NODATA (NOERROR, SOA in authority) otherwise.
    Null,
    /// The block page's addresses for A/AAAA, NODATA otherwise.
    Address { v4: Ipv4Addr, v6: Ipv6Addr },
}

/// Extended DNS Error info codes (RFC 8914 §5.2) this crate emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdeCode {
    /// 3: Stale Answer (emitted by the cache, not by filters).
    StaleAnswer,
    /// 15: Blocked — by the operator's own policy (a blocklist).
    Blocked,
    /// 16: Censored — by an external requirement.
    Censored,
    /// 17: Filtered — at the request of the client (e.g. a per-group policy).
    Filtered,
    /// 18: Prohibited — the client is not authorised.
    Prohibited,
    /// 22: No Reachable Authority (emitted when every upstream failed).
    NoReachableAuthority,
    /// Any other code.
    Other(u16),
}

impl EdeCode {
    pub fn code(self) -> u16 {
        match self {
            EdeCode::StaleAnswer => 3,
            EdeCode::Blocked => 15,
            EdeCode::Censored => 16,
            EdeCode::Filtered => 17,
            EdeCode::Prohibited => 18,
            EdeCode::NoReachableAuthority => 22,
            EdeCode::Other(c) => c,
        }
    }
}

/// Told about every answered query. Implemented by the integrator with the store's
/// event writer. `record` must hand the record off without waiting (e.g. `try_send` into
/// a bounded channel) — it runs on the hot path.
pub trait QueryLog<I>: Send + Sync + 'static {
    fn record(&self, record: QueryRecord<I>);
}

impl<I, T: QueryLog<I>> QueryLog<I> for Arc<T> {
    #[inline]
    fn record(&self, record: QueryRecord<I>) {
        (**self).record(record)
    }
}

/// A log that drops everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullLog;

impl<I> QueryLog<I> for NullLog {
    #[inline]
    fn record(&self, _record: QueryRecord<I>) {}
}

/// A filter that allows everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl QueryFilter for AllowAll {
    type Info = ();
    #[inline]
    fn check(&self, _: IpAddr, _: &str, _: Qtype) -> FilterDecision<()> {
        FilterDecision::allow()
    }
}

/// A type-erased payload, for integrators who prefer `Arc<dyn Any>` to a concrete
/// [`QueryFilter::Info`].
pub type AnyInfo = Arc<dyn Any + Send + Sync>;

/// Transport the query arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What the resolver did with a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Answered from cache or upstream (including upstream NXDOMAIN / NODATA).
    Allowed,
    /// Answered with a block response.
    Blocked,
    /// Answered with a safe-search CNAME.
    SafeSearch,
    /// The filter refused it ([`FilterVerdict::Refuse`]), or the class/type is refused.
    Refused,
    /// Over the per-client rate limit.
    RateLimited,
    /// Allowed, but no upstream answered and nothing stale was cached.
    Servfail,
    /// Malformed or unsupported (FORMERR / NOTIMP / BADVERS); `qname` may be empty.
    Malformed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Blocked => "blocked",
            Verdict::SafeSearch => "safe_search",
            Verdict::Refused => "refused",
            Verdict::RateLimited => "rate_limited",
            Verdict::Servfail => "servfail",
            Verdict::Malformed => "malformed",
        }
    }
}

/// One answered query, as told to the [`QueryLog`]. Dropped packets (not even a header,
/// or a response sent to us) are not recorded.
#[derive(Clone, Debug)]
pub struct QueryRecord<I> {
    /// When the query arrived (wall clock, read through [`crate::clock::Clock`]).
    pub at: SystemTime,
    pub client: IpAddr,
    pub transport: Transport,
    /// Lowercase, no trailing dot (as given to the filter); empty when unparseable.
    pub qname: Box<str>,
    pub qtype: Qtype,
    pub verdict: Verdict,
    /// Response code sent (including extended rcodes such as BADVERS = 16).
    pub rcode: u16,
    /// Answered from the cache (fresh or stale) without asking upstream.
    pub cache_hit: bool,
    /// Answered with expired data because every upstream failed (RFC 8767).
    pub stale: bool,
    /// Time spent waiting on upstream, when upstream was asked.
    pub upstream_latency: Option<Duration>,
    /// The filter's payload, when the filter was consulted and gave one.
    pub info: Option<I>,
}
