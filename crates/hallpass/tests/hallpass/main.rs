//! The hallpass crate's one integration-test binary: every command family through the
//! built binary (policy, catalog, people/sessions/audit/retention, accounts, config,
//! permissions, messages, directory sync against slapd, detect), and
//! `serve` both as a real process and in-process through `hallpass::testkit`.

// Helpers outside #[test] functions unwrap too: a test fails loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account_cli;
mod audit_anchor_cli;
mod catalog_cli;
mod config_cli;
mod console;
mod detect_cli;
mod directory_cli;
mod mail_cli;
mod messages_cli;
mod permissions_cli;
mod policy_cli;
mod serve;
mod store_cli;
