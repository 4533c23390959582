//! One immutable view of everything a decision needs.

use std::net::IpAddr;
use std::sync::Arc;

use hallpass_catalog::{Catalog, CategorySet};
use hallpass_policy::{
    CategoryMask, CategoryVocab, Decision, Diagnostic, Identity, Live, Policy, Request,
};

use crate::blocked::BlockedCounts;
use crate::identity::{IdentityMap, Who};

/// A policy file that did not compile against the catalog: every diagnostic, in order.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct PolicyError(pub Vec<Diagnostic>);

/// Parses `text` (named `file` in messages) and compiles it against the categories of
/// `catalog`. Returns the policy and its warnings. Declarations given as `text_file` are
/// read relative to `file`'s directory.
pub fn compile_policy(
    file: &str,
    text: &str,
    catalog: &Catalog,
) -> Result<(Policy, Vec<Diagnostic>), PolicyError> {
    let mut doc = hallpass_policy::PolicyDoc::parse(file, text).map_err(PolicyError)?;
    read_declaration_files(&mut doc, file)?;
    let vocab = CategoryVocab::new(
        catalog
            .vocabulary()
            .map(|(name, id)| (name.to_string(), id)),
    );
    doc.compile(&vocab).map_err(PolicyError)
}

/// Reads the declaration texts `doc` names by file (`text_file`), relative to the
/// directory of `policy_file`.
pub fn read_declaration_files(
    doc: &mut hallpass_policy::PolicyDoc,
    policy_file: &str,
) -> Result<(), PolicyError> {
    let base = std::path::Path::new(policy_file).parent();
    doc.read_declaration_files(|path| {
        let path = match base {
            Some(dir) => dir.join(path),
            None => std::path::PathBuf::from(path),
        };
        std::fs::read_to_string(&path).map_err(|e| format!("{} ({})", e, path.display()))
    })
    .map_err(PolicyError)
}

/// Everything a decision needs, immutable once built.
pub struct Snapshot {
    /// Counts up with every swap; shown in metrics and logs.
    pub generation: u64,
    pub policy: Arc<Policy>,
    pub catalog: Arc<Catalog>,
    pub identities: Arc<IdentityMap>,
    pub live: Arc<Live>,
    /// Blocked answers per category of this catalog (carried into the next snapshot).
    pub(crate) blocked: Arc<BlockedCounts>,
}

/// A decision on a host name for one client.
pub struct HostDecision<'a> {
    pub who: Who,
    pub categories: CategorySet,
    pub decision: Decision<'a>,
}

impl Snapshot {
    pub fn new(
        policy: Arc<Policy>,
        catalog: Arc<Catalog>,
        identities: Arc<IdentityMap>,
        live: Arc<Live>,
    ) -> Snapshot {
        Snapshot {
            generation: 1,
            blocked: Arc::new(BlockedCounts::new(&catalog)),
            policy,
            catalog,
            identities,
            live,
        }
    }

    /// This snapshot with other sessions (the policy and catalog are shared, not copied).
    pub fn with_identities(&self, identities: impl Into<Arc<IdentityMap>>) -> Snapshot {
        Snapshot {
            generation: self.generation + 1,
            policy: Arc::clone(&self.policy),
            catalog: Arc::clone(&self.catalog),
            identities: identities.into(),
            live: Arc::clone(&self.live),
            blocked: Arc::clone(&self.blocked),
        }
    }

    /// This snapshot with other live exceptions.
    pub fn with_live(&self, live: Live) -> Snapshot {
        Snapshot {
            generation: self.generation + 1,
            policy: Arc::clone(&self.policy),
            catalog: Arc::clone(&self.catalog),
            identities: Arc::clone(&self.identities),
            live: Arc::new(live),
            blocked: Arc::clone(&self.blocked),
        }
    }

    /// This snapshot with another policy and catalog; sessions are re-resolved to the new
    /// policy's groups by the caller (see [`IdentityMap::build`]).
    pub fn with_policy(
        &self,
        policy: Arc<Policy>,
        catalog: Arc<Catalog>,
        identities: IdentityMap,
    ) -> Snapshot {
        Snapshot {
            generation: self.generation + 1,
            blocked: self.blocked.for_catalog(&self.catalog, &catalog),
            policy,
            catalog,
            identities: Arc::new(identities),
            live: Arc::clone(&self.live),
        }
    }

    /// The person at `ip` (if a session says so) and the groups the policy applies.
    pub fn identify(&self, ip: IpAddr) -> Who {
        let network = self.policy.network_groups(ip);
        match self.identities.get(ip) {
            // Fail closed: a network range's group must not widen the restriction.
            Some(id) if id.restricted => Who {
                person: Some(Arc::clone(&id.person)),
                groups: id.groups,
                restricted: true,
            },
            Some(id) => Who {
                person: Some(Arc::clone(&id.person)),
                groups: id.groups | network,
                restricted: false,
            },
            None if !network.is_empty() => Who {
                person: None,
                groups: network,
                restricted: false,
            },
            None => Who {
                person: None,
                groups: self.policy.unidentified_groups(),
                restricted: false,
            },
        }
    }

    /// Classifies and decides `host` for the client at `ip`, at `now`.
    pub fn decide_host(&self, ip: IpAddr, host: &str, now: jiff::Timestamp) -> HostDecision<'_> {
        let who = self.identify(ip);
        let categories = self.catalog.lookup_host(host);
        let decision = self.policy.decide(
            &Request {
                identity: Identity::Groups(who.groups),
                person: who.person.as_ref().map(|person| &*person.username),
                host,
                path: None,
                categories: CategoryMask::from_bits(categories.bits()),
                file_type: None,
            },
            &self.live,
            now,
        );
        HostDecision {
            who,
            categories,
            decision,
        }
    }

    /// Counts one blocked answer for a name in `categories`, for [`Snapshot::render_metrics`].
    pub fn count_blocked(&self, categories: CategorySet) {
        self.blocked.count(categories);
    }

    /// Prometheus text for what the snapshot counts: blocked answers per category (totals
    /// since start, across policy and catalog reloads).
    pub fn render_metrics(&self, out: &mut String) {
        self.blocked.render(out);
    }

    /// Category names of `set` in this snapshot's catalog (for events and block pages).
    pub fn category_names(&self, set: &CategorySet) -> Vec<String> {
        self.catalog.names_of(*set).map(str::to_string).collect()
    }
}
