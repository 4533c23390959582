//! Optional per-client token buckets. Off by default: a school's NAT can put hundreds of
//! pupils behind one address.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Per-client rate limit settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained queries per second per client address.
    pub per_second: f64,
    /// Bucket size: queries a client may send at once.
    pub burst: f64,
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
}
