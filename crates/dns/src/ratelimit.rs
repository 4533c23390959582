//! Optional per-client token buckets. Off by default: a school's NAT can put hundreds of
//! pupils behind one address.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::DnsError;

/// Per-client rate limit settings. Build with [`RateLimit::new`], which refuses a limit
/// that would refuse every query; [`crate::DnsServer::bind`] checks the fields again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained queries per second per client address.
    pub per_second: f64,
    /// Bucket size: queries a client may send at once.
    pub burst: f64,
}

impl RateLimit {
    /// A limit of `per_second` sustained queries per client address with bursts of
    /// `burst`. Zero (or negative, or not finite) per second, or a burst below one query,
    /// would refuse every query after the first few (or all of them): that is an error,
    /// [`DnsError::BadRateLimit`], not a way to switch the limit off (leave it `None`).
    pub fn new(per_second: f64, burst: f64) -> Result<RateLimit, DnsError> {
        let limit = RateLimit { per_second, burst };
        limit.validate()?;
        Ok(limit)
    }

    /// Checks a limit built field by field (see [`RateLimit::new`]).
    pub fn validate(&self) -> Result<(), DnsError> {
        let ok = self.per_second.is_finite()
            && self.per_second > 0.0
            && self.burst.is_finite()
            && self.burst >= 1.0;
        if ok {
            Ok(())
        } else {
            Err(DnsError::BadRateLimit {
                per_second: self.per_second,
                burst: self.burst,
            })
        }
    }
}

const SHARDS: usize = 64;
/// A shard is swept of idle buckets when it grows beyond this many clients.
const SWEEP_AT: usize = 4096;

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub(crate) struct RateLimiter {
    limit: RateLimit,
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<IpAddr, Bucket>>]>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes one token for `client`; false when the bucket is empty.
    pub(crate) fn allow(&self, client: IpAddr, now: Instant) -> bool {
        let shard = (self.hasher.hash_one(client) as usize) % SHARDS;
        let mut map = match self.shards[shard].lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() >= SWEEP_AT && !map.contains_key(&client) {
            // Forget clients whose bucket has refilled completely: they lose nothing.
            let full_after = self.limit.burst / self.limit.per_second.max(f64::MIN_POSITIVE);
            map.retain(|_, b| now.saturating_duration_since(b.last).as_secs_f64() < full_after);
        }
        let b = map.entry(client).or_insert(Bucket {
            tokens: self.limit.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.limit.per_second).min(self.limit.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use std::time::Duration;

    #[test]
    fn bucket() {
        let clock = Clock::manual();
        let rl = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3.0,
        });
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let t = clock.instant();
        assert!(rl.allow(ip, t) && rl.allow(ip, t) && rl.allow(ip, t));
        assert!(!rl.allow(ip, t));
        assert!(rl.allow(other, t));
        clock.advance(Duration::from_millis(500));
        assert!(rl.allow(ip, clock.instant()));
        assert!(!rl.allow(ip, clock.instant()));
    }

    #[test]
    fn a_limit_that_refuses_everything_is_an_error() {
        for (per_second, burst) in [
            (0.0, 0.0),
            (0.0, 10.0),
            (-1.0, 2.0),
            (5.0, 0.5),
            (f64::NAN, 2.0),
            (f64::INFINITY, 2.0),
        ] {
            let e = RateLimit::new(per_second, burst).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("DNS rate limit per client must be above 0"),
                "{e}"
            );
        }
        assert_eq!(
            RateLimit::new(1.0, 1.0).unwrap(),
            RateLimit {
                per_second: 1.0,
                burst: 1.0
            }
        );
    }
}
