//! Reading the policy and catalog a snapshot is built from: the files named in the
//! configuration, or the built-in demo school when none are named.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use hallpass_catalog::Catalog;
use hallpass_policy::Policy;

/// The demo school's policy: the WCS example, compiled into the binary.
const DEMO_POLICY: &str = include_str!("../../../../../examples/policies/wcs.toml");
const DEMO_POLICY_NAME: &str = "examples/policies/wcs.toml (built in)";

/// Where the policy and catalog come from.
#[derive(Debug, Clone)]
pub struct Sources {
    pub policy: Option<PathBuf>,
    pub catalog: Option<PathBuf>,
    /// The demo's block-page address: its DNS block answers point at the demo's own
    /// block page (on loopback) rather than the WCS example's 10.10.0.10. Ignored when
    /// a policy file is named (its `[dns]` section decides).
    pub demo_block_page: Option<Ipv4Addr>,
}

/// A compiled policy and the catalog it was compiled against.
pub struct Loaded {
    pub policy: Arc<Policy>,
    pub catalog: Arc<Catalog>,
    /// Modification times of the files, to notice when they change.
    pub stamps: Stamps,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stamps {
    policy: Option<SystemTime>,
    catalog: Option<SystemTime>,
}

impl Sources {
    /// Reads and compiles both inputs. Errors name the file, line and field.
    pub fn load(&self) -> anyhow::Result<Loaded> {
        let stamps = self.stamps();
        let catalog = Arc::new(self.load_catalog()?);
        let (name, text) = match &self.policy {
            Some(path) => (
                path.display().to_string(),
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading policy {}", path.display()))?,
            ),
            None => (
                DEMO_POLICY_NAME.to_string(),
                demo_policy(self.demo_block_page)?,
            ),
        };
        let (policy, warnings) = hallpass_engine::compile_policy(&name, &text, &catalog)
            .map_err(|errors| anyhow::anyhow!("policy {name} has errors:\n{errors}"))?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        Ok(Loaded {
            policy: Arc::new(policy),
            catalog,
            stamps,
        })
    }

    fn load_catalog(&self) -> anyhow::Result<Catalog> {
        match &self.catalog {
            None => Catalog::demo().context("building the demo catalog"),
            Some(path) => crate::cmd::catalog::open_any(path, hallpass_catalog::HostLookups::Table),
        }
    }

    /// Modification times now; a difference from the loaded ones means reload.
    pub fn stamps(&self) -> Stamps {
        Stamps {
            policy: self.policy.as_deref().and_then(modified),
            catalog: self.catalog.as_deref().and_then(modified),
        }
    }

    pub fn describe(&self) -> String {
        let policy = self
            .policy
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| DEMO_POLICY_NAME.to_string());
        let catalog = self
            .catalog
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "demo catalog (built in)".to_string());
        format!("policy {policy}, catalog {catalog}")
    }
}

/// The WCS example's text, with its block answers pointing at `block_page` if given.
fn demo_policy(block_page: Option<Ipv4Addr>) -> anyhow::Result<String> {
    const LINE: &str = "blockpage_ipv4 = \"10.10.0.10\"";
    let Some(ip) = block_page else {
        return Ok(DEMO_POLICY.to_string());
    };
    anyhow::ensure!(
        DEMO_POLICY.contains(LINE),
        "the built-in demo policy no longer has the line {LINE:?} to point at the block page"
    );
    Ok(DEMO_POLICY.replacen(LINE, &format!("blockpage_ipv4 = \"{ip}\""), 1))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
