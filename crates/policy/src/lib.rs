//! The acceptable-use policy as code. A school's ICT policy is written as a TOML file
//! (documents and their clauses, periods of the school day, groups of people and
//! networks, ordered web rules); this crate parses it with precise `FILE:LINE:COL`
//! diagnostics, compiles it against the category catalog's vocabulary, and decides
//! requests from it: first matching rule wins, every decision cites its clause, and
//! `decide` allocates nothing. The crate is pure: it reads only the text it is given
//! and never the clock (time is a parameter).
//!
//! ```text
//! let doc = PolicyDoc::parse("wcs.toml", &text)?;
//! let (policy, warnings) = doc.compile(&CategoryVocab::open())?;
//! let d = policy.decide(&Request::new(Identity::Groups(groups), "example.com"), &Live::none(), now);
//! ```

mod category;
mod compile;
mod decide;
mod declaration;
mod diag;
mod domain;
mod explain;
mod groups;
mod live;
mod mail;
mod model;
mod parse;
mod periods;
mod policy;
mod request;
mod shadow;

use std::net::{Ipv4Addr, Ipv6Addr};

pub use category::{CategoryMask, CategoryVocab};
pub use decide::{Action, Alert, AlertKind, Decision, DefaultAction, RuleRef, Source, Verdict};
pub use declaration::Declaration;
pub use diag::{Diagnostic, Severity};
pub use explain::{LiftedBy, Miss, TraceStep};
pub use groups::{GroupId, GroupSet, PersonAttrs};
pub use live::{Grant, Live, Override, OverrideTarget, Sanction, Subject};
pub use mail::{
    AttachmentKind, Direction, LANGUAGE_THEMES, MailAction, MailDecision, MailFacts, MailPolicy,
    MailRuleAlert, PersonalDataRule, address_domain,
};
pub use model::PolicyDoc;
pub use periods::{TimeError, parse_instant};
pub use policy::{DocumentInfo, Policy, RuleInfo};
pub use request::{FileType, Identity, Request};

/// Domains whose NXDOMAIN tells browsers and devices to stop bypassing the school's
/// resolver (Firefox DoH canary, iCloud Private Relay).
pub const CANARY_DOMAINS: [&str; 3] = [
    "use-application-dns.net",
    "mask.icloud.com",
    "mask-h2.icloud.com",
];

/// How the DNS resolver answers for a blocked name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockMode {
    #[default]
    NxDomain,
    /// `0.0.0.0` / `::`.
    Null,
    /// The block page server's address, so browsers show why.
    BlockPage,
}

/// The `[dns]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    pub block_mode: BlockMode,
    /// TTL of blocked answers, in seconds: short, so overrides take effect quickly.
    pub block_ttl: u32,
    pub blockpage_ipv4: Option<Ipv4Addr>,
    pub blockpage_ipv6: Option<Ipv6Addr>,
    /// Answer NXDOMAIN for [`CANARY_DOMAINS`] (for everyone).
    pub block_canaries: bool,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            block_mode: BlockMode::NxDomain,
            block_ttl: 10,
            blockpage_ipv4: None,
            blockpage_ipv6: None,
            block_canaries: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum YouTubeMode {
    #[default]
    Off,
    Moderate,
    Strict,
}

impl YouTubeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            YouTubeMode::Off => "off",
            YouTubeMode::Moderate => "moderate",
            YouTubeMode::Strict => "strict",
        }
    }
}

/// Safe search enforcement (by DNS rewrite to the engines' safe endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SafeSearch {
    pub google: bool,
    pub youtube: YouTubeMode,
    pub bing: bool,
    pub duckduckgo: bool,
}

impl SafeSearch {
    /// The stricter of two settings, engine by engine.
    #[must_use]
    pub fn strictest(&self, other: &SafeSearch) -> SafeSearch {
        SafeSearch {
            google: self.google || other.google,
            youtube: self.youtube.max(other.youtube),
            bing: self.bing || other.bing,
            duckduckgo: self.duckduckgo || other.duckduckgo,
        }
    }
}
