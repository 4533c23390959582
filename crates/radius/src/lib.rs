//! RADIUS accounting for Hallpass: Wi-Fi controllers and 802.1X switches report who is
//! at which address (RFC 2866 Accounting-Start / Interim-Update / Stop), and that becomes
//! a logon session. This crate is the protocol, with no IO and no clock: parsing and
//! verifying a request ([`packet`]), the configured clients and their secrets
//! ([`clients`]), duplicate detection ([`dedup`]) and the counters ([`counters`]). The
//! socket and the store live in `hallpass serve` (`cmd/serve/radius.rs`).

pub mod clients;
pub mod counters;
pub mod dedup;
pub mod packet;

pub use clients::{Client, Clients};
pub use counters::{Counters, DropReason};
pub use dedup::RecentRequests;
pub use packet::{
    AccountingRequest, PacketError, StatusType, accounting_response, parse_accounting_request,
};
