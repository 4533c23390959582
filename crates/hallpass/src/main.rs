//! The Hallpass binary: parses the command line and hands off to one command module.
//! Each module under `cmd/` owns one family of subcommands; this file only wires them.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hallpass::cmd;

/// Hallpass enforces a school's ICT acceptable-use policy: DNS and web filtering by
/// category, group and time of day, with every decision citing its policy clause.
#[derive(Debug, Parser)]
#[command(
    after_help = "Results go to standard output, diagnostics and logs to standard error. \
Exit status: 0 success, 1 a check failed (the command's help says which), 2 an error, \
141 the reader of standard output went away (e.g. `| head`)."
)]
#[command(name = "hallpass", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log filter, e.g. `info`, `hallpass=debug` (also read from HALLPASS_LOG).
    #[arg(long, global = true, env = "HALLPASS_LOG", default_value = "info")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the filtering services (DNS resolver, admin/metrics HTTP, the web console). With
    /// no options it runs the built-in demo school on loopback ports and prints them, with
    /// a console account per role.
    Serve(Box<cmd::serve::ServeArgs>),
    /// Check acceptable-use policy files for errors and shadowed rules.
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCommand),
    /// Show what the policy decides for one request, and why.
    Explain(cmd::policy::ExplainArgs),
    /// Import, inspect and update category lists (UT1, hosts files, adblock lists).
    #[command(subcommand)]
    Catalog(cmd::catalog::CatalogCommand),
    /// Import people (students, staff) from a school MIS export.
    #[command(subcommand)]
    People(cmd::store::PeopleCommand),
    /// Record logon sessions (which person is at which IP address).
    #[command(subcommand)]
    Session(cmd::store::SessionCommand),
    /// Verify the tamper-evident audit log.
    #[command(subcommand)]
    Audit(cmd::store::AuditCommand),
    /// Console accounts (who may sign in to the web console, with which role): add,
    /// change password, list, disable.
    #[command(subcommand)]
    Account(cmd::account::AccountCommand),
    /// API tokens for scripts and other systems calling the console's REST API.
    #[command(subcommand)]
    Token(cmd::account::TokenCommand),
    /// Sync people (users, roles, year groups, groups) from Active Directory or LDAP.
    #[command(subcommand)]
    Directory(cmd::directory::DirectoryCommand),
    /// Check texts (search terms, messages) for safeguarding risk phrases: self-harm,
    /// extremism, bullying, grooming, drugs, weapons, hate, adult content.
    Detect(cmd::detect::DetectArgs),
    /// The email filter's dry run: decide one message file as the relay would.
    #[command(subcommand)]
    Mail(cmd::mail::MailCommand),
    /// Delete recorded data whose retention period has passed.
    #[command(subcommand)]
    Retention(cmd::store::RetentionCommand),
    /// The school's certificate authority for the web proxy's HTTPS inspection.
    #[command(subcommand)]
    Ca(cmd::ca::CaCommand),
}

/// Exit status when the reader of stdout went away (`hallpass audit list | head -1`):
/// 128 + SIGPIPE, what a shell reports for `cat` in the same place, so `set -o pipefail`
/// scripts see it as they would any other tool's.
const EXIT_BROKEN_PIPE: u8 = 141;

fn main() -> ExitCode {
    // Every file and directory Hallpass creates (database, WAL, spill file, audit key,
    // catalog indexes) is private to the user it runs as: they hold names, emails and
    // browsing history. The data directory's own checks are in `hallpass_store::data_dir`.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    init_logging(&cli.log);
    // The one clock every command reads the time from (tests give `--at` instead).
    let clock = hallpass_clock::Clock::system();
    match run(cli.command, &clock) {
        Ok(code) => code,
        // The reader of our output went away (`| head`): nothing left to say to anyone.
        Err(error) if is_broken_pipe(&error) => ExitCode::from(EXIT_BROKEN_PIPE),
        Err(error) => {
            // Never panics on a closed stderr (`2>&1 | head`): the status still tells.
            let _ = writeln!(
                std::io::stderr().lock(),
                "error: {}",
                hallpass::describe_error(&error)
            );
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(command: Command, clock: &hallpass_clock::Clock) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => cmd::serve::run(*args),
        Command::Policy(command) => cmd::policy::run(command),
        Command::Explain(args) => cmd::policy::explain(args, clock),
        Command::Catalog(command) => cmd::catalog::run(command),
        Command::People(command) => cmd::store::run_people(command, clock),
        Command::Session(command) => cmd::store::run_session(command, clock),
        Command::Audit(command) => cmd::store::run_audit(command, clock),
        Command::Retention(command) => cmd::store::run_retention(command, clock),
        Command::Directory(command) => cmd::directory::run(command, clock),
        Command::Account(command) => cmd::account::run_account(command),
        Command::Token(command) => cmd::account::run_token(command),
        Command::Detect(args) => cmd::detect::run(args),
        Command::Mail(command) => cmd::mail::run(command, clock),
        Command::Ca(command) => cmd::ca::run(command, clock),
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
