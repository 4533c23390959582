//! `hallpass policy check` and `hallpass explain`. (Owned by the policy work.)
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Check policy files (not yet implemented).
    Check { files: Vec<std::path::PathBuf> },
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    target: String,
}

pub fn run(_command: PolicyCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}

pub fn explain(_args: ExplainArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
