//! Duplicate detection (RFC 5080 §2.2.2): a request from the same source address and
//! port with the same Identifier and Request Authenticator, within a window, is a
//! retransmission. It gets the response it got before and is not applied again.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a response is remembered: longer than a NAS retries one request (RADIUS
/// clients give up after about 30 s).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);
/// At most this many responses are remembered; the oldest go first.
pub const DEFAULT_CAPACITY: usize = 16_384;

type Key = (SocketAddr, u8, [u8; 16]);

/// Responses recently sent, by request. Time is passed in (`now`), never read.
#[derive(Debug)]
pub struct RecentRequests {
    window: Duration,
    capacity: usize,
    responses: HashMap<Key, Vec<u8>>,
    order: VecDeque<(Instant, Key)>,
}

impl RecentRequests {
    pub fn new(window: Duration, capacity: usize) -> RecentRequests {
        RecentRequests {
            window,
            capacity: capacity.max(1),
            responses: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The response already sent for this request, if it is a retransmission.
    pub fn get(
        &mut self,
        source: SocketAddr,
        identifier: u8,
        authenticator: &[u8; 16],
        now: Instant,
    ) -> Option<&[u8]> {
        self.expire(now);
        self.responses
            .get(&(source, identifier, *authenticator))
            .map(Vec::as_slice)
    }

    /// Remembers the response sent for a request.
    pub fn insert(
        &mut self,
        source: SocketAddr,
        identifier: u8,
        authenticator: [u8; 16],
        response: Vec<u8>,
        now: Instant,
    ) {
        self.expire(now);
        while self.responses.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_front() else {
                break;
            };
            self.responses.remove(&oldest);
        }
        let key = (source, identifier, authenticator);
        if self.responses.insert(key, response).is_none() {
            self.order.push_back((now, key));
        }
    }

    pub fn len(&self) -> usize {
        self.responses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.responses.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, key)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.window {
                break;
            }
            self.responses.remove(key);
            self.order.pop_front();
        }
    }
}
