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
pub mod directory;
pub mod testkit;

/// The error and its causes, `: `-separated, leaving out a cause whose text the message
/// before it already ends with (`sqlx` and `std::io` errors wrapped by our own errors
/// that quote them would otherwise print the same words twice).
pub fn describe_error(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) || out.contains(&format!("{text}: ")) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
