//! What an enforcement point asks about: who, which host/URL, its categories and file type.

use std::net::IpAddr;

use crate::category::CategoryMask;
use crate::groups::GroupSet;

/// Who a request is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The person's groups (from their logon session or proxy authentication). An
    /// empty set is treated as unidentified.
    Groups(GroupSet),
    /// Only the client address is known: its network groups if any, otherwise the
    /// unidentified group.
    Ip(IpAddr),
}

/// What was fetched, as far as the enforcement point can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileType<'a> {
    /// Without the dot, any case: `exe`.
    pub extension: Option<&'a str>,
    /// `application/x-msdownload` (parameters after `;` are ignored).
    pub mime: Option<&'a str>,
}

/// One request to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub identity: Identity,
    /// The person's id, when known, so per-person grants and sanctions apply.
    pub person: Option<&'a str>,
    pub host: &'a str,
    /// Path and query, starting with `/`, when the enforcement point sees it (proxy).
    pub path: Option<&'a str>,
    /// The host's/URL's categories from the catalog.
    pub categories: CategoryMask,
    pub file_type: Option<FileType<'a>>,
}

impl<'a> Request<'a> {
    /// A request for `host` with no path, categories or file type.
    pub fn new(identity: Identity, host: &'a str) -> Self {
        Request {
            identity,
            person: None,
            host,
            path: None,
            categories: CategoryMask::EMPTY,
            file_type: None,
        }
    }
}
