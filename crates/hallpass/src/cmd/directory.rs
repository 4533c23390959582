//! `hallpass directory sync`: people from Active Directory / LDAP into the store. Reads
//! the whole directory first ([`crate::directory::client`]), maps it
//! ([`crate::directory::mapping`]), then applies it in one go (`People::sync`), so an
//! unreachable server, a refused bind or a bad configuration changes nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hallpass_clock::Clock;

use super::store::{StoreArgs, default_actor, runtime};
use crate::directory::{client, config::DirectoryConfig, mapping};

/// The `source` of people the directory sync manages.
const SOURCE: &str = "ldap";

#[derive(Debug, clap::Subcommand)]
pub enum DirectoryCommand {
    /// Make Hallpass's people match the directory: add new users, update changed ones,
    /// disable leavers.
    ///
    /// The configuration file (--config) has a [directory] table: the server (url,
    /// ldap:// or ldaps://, optional starttls), the account to bind as (bind_dn, with the
    /// password in password_file or the environment variable password_env: never on the
    /// command line), where people are (base_dn, filter), which attributes hold the
    /// username, display name, email, MIS id, year group and form, role rules (by group or
    /// OU, first match wins) and which directory groups become Hallpass groups. See the
    /// README, "Syncing people from Active Directory / LDAP".
    ///
    /// Everyone the search finds is checked like a CSV roster row. An entry that fails (no
    /// username, a year group that is not 1-13/R/N, a username two entries share, no
    /// matching role) is listed with its DN and skipped; the rest are synced, and a
    /// skipped person is neither changed nor disabled. People this sync added earlier who
    /// are no longer in the directory are disabled, never deleted: marked as left, logged
    /// off, their console account disabled. One who comes back is re-enabled (their
    /// console account stays disabled until `hallpass account` enables it). People from a
    /// CSV import are left alone unless the directory has them too.
    ///
    /// Prints every change (field: old -> new) and a summary. Running it again with no
    /// change in the directory changes nothing and writes no audit entry; a sync that
    /// changes anything writes one (`people.sync`). Exit status: 0 synced, 1 synced but
    /// some entries were skipped, 2 nothing changed because of an error (bad
    /// configuration, server unreachable, bind refused, an empty search).
    Sync {
        /// The directory configuration file (TOML with a [directory] table).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Show what would change without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Who is syncing, for the audit log.
        #[arg(long, default_value_t = default_actor())]
        actor: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub fn run(command: DirectoryCommand, clock: &Clock) -> anyhow::Result<ExitCode> {
    let DirectoryCommand::Sync {
        config,
        dry_run,
        actor,
        store,
    } = command;
    let cfg = DirectoryConfig::load(&config)?;
    let password = cfg.password()?;
    runtime()?.block_on(async {
        let fetched = client::fetch(&cfg, password.as_deref()).await?;
        anyhow::ensure!(
            !fetched.entries.is_empty(),
            "the search of {} for {} found no entries: nothing was changed (check base_dn \
             and filter; an empty directory would disable everyone)",
            cfg.base_dn,
            cfg.filter
        );
        let mapped = mapping::map_entries(&cfg, &fetched.entries, &fetched.group_members);
        for s in &mapped.skipped {
            say!("skipped {}: {}", s.dn, s.reason);
        }
        anyhow::ensure!(
            !mapped.records.is_empty(),
            "none of the {} entries found could be synced (see above): nothing was changed \
             (check the attribute names in [directory.attributes])",
            fetched.entries.len()
        );
        let store = store.connect().await?;
        let report = store
            .people()
            .sync(
                &mapped.records,
                &mapped.protected,
                dry_run,
                &actor,
                SOURCE,
                &cfg.url,
                clock.now(),
            )
            .await
            .context("applying the directory to the store")?;
        let would = |done: &'static str, maybe: &'static str| if dry_run { maybe } else { done };
        let by_name: std::collections::HashMap<&str, &hallpass_store::PersonRecord> = mapped
            .records
            .iter()
            .map(|r| (r.username.as_str(), r))
            .collect();
        for u in &report.added {
            let r = by_name.get(u.as_str());
            say!(
                "{} {u} ({}{})",
                would("added", "would add"),
                r.map_or("", |r| r.role.as_str()),
                r.and_then(|r| r.year_group.as_deref())
                    .map(|y| format!(", year {y}"))
                    .unwrap_or_default()
            );
        }
        for (u, changes) in &report.changed {
            let what: Vec<String> = changes
                .iter()
                .map(|c| format!("{}: {} -> {}", c.field, c.old, c.new))
                .collect();
            say!(
                "{} {u}: {}",
                would("changed", "would change"),
                what.join(", ")
            );
        }
        for u in &report.disabled {
            say!(
                "{} {u}: no longer in the directory",
                would("disabled", "would disable")
            );
        }
        say!(
            "{}{} added, {} changed, {} disabled, {} unchanged, {} skipped{}",
            if dry_run { "dry run: " } else { "" },
            report.added.len(),
            report.changed.len(),
            report.disabled.len(),
            report.unchanged,
            mapped.skipped.len(),
            match report.audit_seq {
                Some(seq) => format!(" (audit entry {seq})"),
                None if !dry_run && report.is_empty() => " (no changes)".to_string(),
                None => String::new(),
            }
        );
        Ok(if mapped.skipped.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
