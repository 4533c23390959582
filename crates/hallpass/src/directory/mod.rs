//! Directory sync from LDAP / Active Directory (`hallpass directory sync`): the
//! configuration ([`config`]), reading the directory ([`client`], the only part that does
//! IO) and turning entries into roster records ([`mapping`], pure). The store applies the
//! records (`People::sync`).

pub mod client;
pub mod config;
pub mod mapping;
