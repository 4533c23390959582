//! The RADIUS accounting protocol: authenticators against packets computed by hand,
//! length checks, duplicates, client lookup, and that no input makes parsing panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod packets;
mod state;
