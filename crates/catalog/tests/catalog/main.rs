//! The catalog crate's one integration-test binary: index files written, opened and
//! damaged, list importers on bad input, property tests against a reference, the host
//! table, allocation-free lookups, and the real UT1 lists from `../shared`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod alloc;
mod bad_input;
mod corrupt_index;
mod host_table;
mod index_file;
mod props;
mod ut1;
