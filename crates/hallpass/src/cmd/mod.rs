//! One module per family of subcommands.

pub mod catalog;
pub mod policy;
pub mod serve;
pub mod store;
