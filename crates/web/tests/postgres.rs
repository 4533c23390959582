//! The console suite (`tests/console`) on PostgreSQL: accounts, sessions, API tokens,
//! sign-in failures and lockouts, the role matrix and the activity search, each test on a
//! fresh database of the server `HALLPASS_TEST_POSTGRES_URL` names.
//!
//!     source .ci/postgres.sh && cargo test -p hallpass-web --test postgres
//!
//! Runs only when named (`test = false`; `.ci/run` runs it in its PostgreSQL step), and
//! then fails without the URL rather than skipping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "console/accounts.rs"]
mod accounts;
#[path = "console/activity.rs"]
mod activity;
#[path = "console/declarations.rs"]
mod declarations;
#[path = "console/guests.rs"]
mod guests;
#[path = "console/kit.rs"]
mod kit;
#[path = "console/matrix.rs"]
mod matrix;
#[path = "console/signin.rs"]
mod signin;

/// Where this binary's kit keeps the console's records.
const BACKEND: kit::Backend = kit::Backend::Postgres;
