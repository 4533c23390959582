//! Category lists for Hallpass: importers for the lists schools use (UT1 blacklists as
//! a tarball or directory, hosts files, adblock-style lists, plain domain lists), a
//! builder that compiles them into one versioned, checksummed index file, and
//! [`Catalog`], which memory-maps that file read-only and answers "which categories is
//! this host / URL in?" with squidGuard's semantics: a domain entry matches the domain
//! and its subdomains, a URL entry matches a host plus path prefix, an IP entry matches
//! that literal IP, expressions are regular expressions over the URL, and a lookup
//! returns every matching category as a [`CategorySet`]. Host lookups allocate nothing;
//! the index is an `fst` map from byte-reversed host names to a table of category sets,
//! which host lookups read through an in-memory hash table built when it is opened.
//!
//! ```
//! use hallpass_catalog::{CatalogBuilder, ListFormat};
//! let mut b = CatalogBuilder::new();
//! b.import_list("webmail", "inline", "0.0.0.0 mail.example\n".as_bytes(), ListFormat::Auto).unwrap();
//! let catalog = b.build().unwrap();
//! let webmail = catalog.category_id("webmail").unwrap();
//! assert!(catalog.lookup_host("inbox.mail.example").contains(webmail));
//! ```

mod builder;
mod demo;
mod error;
/// For the fuzz targets and damaged-index tests; not part of the API.
#[doc(hidden)]
pub mod fuzzing;
mod host_table;
mod import;
pub mod index;
mod normalize;
mod parse;
mod set;
mod verify_fst;

pub use builder::{CatalogBuilder, MAX_CATEGORY_NAME, write_atomically};
pub use error::CatalogError;
pub use import::{Progress, SourceKind, is_index_file, parse_usage, source_kind};
pub use index::{
    Catalog, CatalogStats, CategoryDiff, CategoryStats, FORMAT_VERSION, HostLookups,
    MAX_INDEX_BYTES,
};
pub use normalize::{MAX_HOST_LEN, normalize_host};
pub use parse::{
    BadLine, ImportReport, ListFormat, MAX_EXAMPLES, MAX_LINE_BYTES, MAX_LIST_BYTES, detect_format,
};
pub use set::CategorySet;

/// Whether a category lists sites to block or sites to allow (UT1's `usage` file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Usage {
    #[default]
    Unknown,
    Black,
    White,
}

impl Usage {
    pub fn as_str(self) -> &'static str {
        match self {
            Usage::Unknown => "unknown",
            Usage::Black => "black",
            Usage::White => "white",
        }
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
