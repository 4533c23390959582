//! `hallpass catalog ...`. (Owned by the catalog work.)
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Show index statistics (not yet implemented).
    Stats { path: std::path::PathBuf },
}

pub fn run(_command: CatalogCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
