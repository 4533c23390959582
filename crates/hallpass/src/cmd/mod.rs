//! One module per family of subcommands.

pub mod account;
pub mod ca;
pub mod catalog;
pub mod detect;
pub mod directory;
pub mod mail;
pub mod policy;
pub mod serve;
pub mod store;
