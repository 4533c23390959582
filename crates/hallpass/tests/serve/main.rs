//! `hallpass serve`'s tests, one binary: the real process (start-up failures, SIGTERM)
//! and the real wiring in-process through `hallpass::testkit` (the service table, health,
//! the injected clock).

mod process;
mod wiring;
