//! `hallpass people|session|audit|retention ...`. (Owned by the store work.)
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum PeopleCommand {
    /// Import people from a CSV export (not yet implemented).
    Import { file: std::path::PathBuf },
}
#[derive(Debug, clap::Subcommand)]
pub enum SessionCommand {
    /// Start a logon session (not yet implemented).
    Start,
}
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify the audit chain (not yet implemented).
    Verify,
}
#[derive(Debug, clap::Subcommand)]
pub enum RetentionCommand {
    /// Run retention now (not yet implemented).
    Run,
}

pub fn run_people(_c: PeopleCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
pub fn run_session(_c: SessionCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
pub fn run_audit(_c: AuditCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
pub fn run_retention(_c: RetentionCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
