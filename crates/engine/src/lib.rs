//! Live state for the enforcement points.
//!
//! A [`Snapshot`] is everything a decision needs: the compiled policy, the category
//! catalog, who is logged on at which address, and the live exceptions (teacher
//! overrides, approved requests, sanctions). Enforcement points read the current snapshot
//! through [`Engine::snapshot`] (an atomic pointer load, no lock, no database); the control
//! plane builds a new one off the hot path and swaps it in with [`Engine::replace`].
//!
//! The engine knows no protocol: each enforcement point has its own adapter that turns a
//! request into [`Snapshot::decide_host`] and the decision into its own answer (DNS:
//! `hallpass-dns-policy`).

mod blocked;
mod identity;
pub mod live;
pub mod sessions;
pub mod shared_credentials;
mod snapshot;

pub use identity::{Identified, IdentityMap, Person, Who, parse_year_group};
pub use snapshot::{HostDecision, PolicyError, Snapshot, compile_policy, read_declaration_files};

use std::sync::Arc;

use arc_swap::ArcSwap;

/// The current snapshot behind an atomic pointer.
pub struct Engine {
    current: ArcSwap<Snapshot>,
}

impl Engine {
    pub fn new(snapshot: Snapshot) -> Engine {
        Engine {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// The snapshot in force now. Cheap; hold it for one request, not longer.
    #[inline]
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The snapshot in force now, as an owned pointer (for building the next one).
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Swaps in `next`; requests already deciding finish on the old one.
    pub fn replace(&self, next: Snapshot) {
        self.current.store(Arc::new(next));
    }

    /// Swaps in `change(current)` atomically: if another follower swapped meanwhile,
    /// `change` runs again on theirs, so neither's change is lost (sessions and live
    /// exceptions are followed by separate tasks).
    pub fn update(&self, change: impl Fn(&Snapshot) -> Snapshot) {
        self.current.rcu(|current| Arc::new(change(current)));
    }
}
