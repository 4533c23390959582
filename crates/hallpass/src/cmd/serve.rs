//! `hallpass serve`: the long-running services. (Owned by the DNS/engine work.)
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

pub fn run(_args: ServeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
