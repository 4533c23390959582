//! The Hallpass binary's commands, as a library: `main.rs` parses the command line and
//! calls one of them; integration tests start the real `serve` wiring through
//! [`testkit`].

/// `println!` that returns the write error instead of panicking: when stdout is a pipe
/// the reader closed (`hallpass audit show | head`), the command stops quietly (see
/// `main`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// `eprintln!` that never panics: a diagnostic written to a closed stderr (`2>&1 | head`)
/// is lost, and the command carries on to its exit status.
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

pub mod cmd;
pub mod config;
pub mod testkit;
