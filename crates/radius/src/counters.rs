//! What the listener counts, as Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a request was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The source address is in no configured client network.
    UnknownClient,
    /// The Request Authenticator does not match the client's secret.
    BadAuthenticator,
    /// Lengths, attribute sizes or values are wrong, or it is not an Accounting-Request.
    Malformed,
    /// The User-Name is nobody in the roster.
    UnknownUser,
    /// A retransmission: answered again, not applied again.
    Duplicate,
    /// A Start/Interim/Stop without a User-Name or Framed-IP-Address.
    MissingAttribute,
    /// The store could not record it: not acknowledged, so the NAS sends it again.
    StoreFailed,
}

impl DropReason {
    pub const ALL: [DropReason; 7] = [
        DropReason::UnknownClient,
        DropReason::BadAuthenticator,
        DropReason::Malformed,
        DropReason::UnknownUser,
        DropReason::Duplicate,
        DropReason::MissingAttribute,
        DropReason::StoreFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownClient => "unknown_client",
            DropReason::BadAuthenticator => "bad_authenticator",
            DropReason::Malformed => "malformed",
            DropReason::UnknownUser => "unknown_user",
            DropReason::Duplicate => "duplicate",
            DropReason::MissingAttribute => "missing_attribute",
            DropReason::StoreFailed => "store_failed",
        }
    }
}

/// The listener's counters (relaxed atomics: read only for `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    received: AtomicU64,
    accepted: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
}

impl Counters {
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// A request applied (or, for Accounting-On/Off, acknowledged).
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self, why: DropReason) {
        self.dropped[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped_count(&self, why: DropReason) -> u64 {
        self.dropped[why as usize].load(Ordering::Relaxed)
    }

    pub fn accepted_count(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    pub fn render_prometheus(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP hallpass_radius_requests_total RADIUS accounting datagrams received.\n\
             # TYPE hallpass_radius_requests_total counter\n\
             hallpass_radius_requests_total {}",
            self.received.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP hallpass_radius_accepted_total RADIUS accounting requests applied and acknowledged.\n\
             # TYPE hallpass_radius_accepted_total counter\n\
             hallpass_radius_accepted_total {}",
            self.accepted_count()
        );
        let _ = writeln!(
            out,
            "# HELP hallpass_radius_dropped_total RADIUS accounting requests not applied, by reason.\n\
             # TYPE hallpass_radius_dropped_total counter"
        );
        for why in DropReason::ALL {
            let _ = writeln!(
                out,
                "hallpass_radius_dropped_total{{reason=\"{}\"}} {}",
                why.as_str(),
                self.dropped_count(why)
            );
        }
    }
}
