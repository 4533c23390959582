//! Reading the directory: bind, one paged subtree search for people (the simple paged
//! results control, so Active Directory's 1000-entry limit does not cut the list short)
//! and, with `membership = "group_member"`, one read of each configured group.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};

use super::config::{DirectoryConfig, Membership};
use super::mapping::{Entry, normalise_dn};

/// What was read.
pub struct Fetched {
    pub entries: Vec<Entry>,
    /// Normalised group DN -> normalised member DNs (`group_member` only).
    pub group_members: HashMap<String, HashSet<String>>,
}

/// Result code 32 (noSuchObject).
const NO_SUCH_OBJECT: u32 = 32;

pub async fn fetch(cfg: &DirectoryConfig, password: Option<&str>) -> anyhow::Result<Fetched> {
    let timeout = Duration::from_secs(cfg.timeout_seconds);
    let settings = LdapConnSettings::new()
        .set_conn_timeout(timeout)
        .set_starttls(cfg.starttls);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &cfg.url)
        .await
        .with_context(|| format!("connecting to the directory at {}", cfg.url))?;
    ldap3::drive!(conn);
    if let (Some(dn), Some(password)) = (&cfg.bind_dn, password) {
        // ldap3's timeout covers only the operation that follows it: set before each.
        ldap.with_timeout(timeout)
            .simple_bind(dn, password)
            .await
            .and_then(|r| r.success())
            .map_err(|e| anyhow::anyhow!("{}", explain(&e)))
            .with_context(|| format!("binding to {} as {dn}", cfg.url))?;
    }
    let a = &cfg.attributes;
    let mut wanted: Vec<&str> = vec![
        &a.username,
        &a.display_name,
        &a.email,
        &a.mis_id,
        &a.member_of,
    ];
    wanted.extend(a.year_group.as_deref());
    wanted.extend(a.form.as_deref());
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(cfg.page_size)),
    ];
    let searching = format!(
        "searching {} for {} on {}",
        cfg.base_dn, cfg.filter, cfg.url
    );
    let mut search = ldap
        .with_timeout(timeout)
        .streaming_search_with(adapters, &cfg.base_dn, Scope::Subtree, &cfg.filter, wanted)
        .await
        .map_err(|e| anyhow::anyhow!("{}", explain(&e)))
        .with_context(|| searching.clone())?;
    let mut entries = Vec::new();
    loop {
        match search.next().await {
            Ok(Some(raw)) => {
                let e = SearchEntry::construct(raw);
                entries.push(Entry {
                    dn: e.dn,
                    attrs: e.attrs.into_iter().collect(),
                });
            }
            Ok(None) => break,
            Err(e) => return Err(anyhow::anyhow!("{}", explain(&e))).context(searching),
        }
    }
    search
        .finish()
        .await
        .success()
        .map_err(|e| anyhow::anyhow!("{}", explain(&e)))
        .with_context(|| searching.clone())?;
    let mut group_members = HashMap::new();
    if cfg.membership == Membership::GroupMember {
        for group in cfg.group_dns() {
            let result = ldap
                .with_timeout(timeout)
                .search(
                    &group,
                    Scope::Base,
                    "(objectClass=*)",
                    vec![a.group_member.as_str()],
                )
                .await
                .and_then(|r| r.success());
            let found = match result {
                Ok((found, _)) => found,
                Err(LdapError::LdapResult { result }) if result.rc == NO_SUCH_OBJECT => {
                    anyhow::bail!(
                        "the group {group} named in the configuration is not in the directory"
                    )
                }
                Err(e) => {
                    return Err(anyhow::anyhow!("{}", explain(&e)))
                        .with_context(|| format!("reading the group {group}"));
                }
            };
            let members: HashSet<String> = found
                .into_iter()
                .map(SearchEntry::construct)
                .flat_map(|e| e.attrs.into_iter())
                .filter(|(k, _)| k.eq_ignore_ascii_case(&a.group_member))
                .flat_map(|(_, v)| v)
                .map(|dn| normalise_dn(&dn))
                .collect();
            group_members.insert(normalise_dn(&group), members);
        }
    }
    // The directory has answered everything; a failed unbind changes nothing.
    let _ = ldap.unbind().await;
    Ok(Fetched {
        entries,
        group_members,
    })
}

/// ldap3's errors, in the words a network manager looks for.
fn explain(e: &LdapError) -> String {
    match e {
        LdapError::LdapResult { result } => {
            let what = match result.rc {
                49 => "invalid credentials (check bind_dn and the password)",
                32 => "no such object (check base_dn)",
                50 => "insufficient access rights for the bind account",
                87 => "the filter is not valid",
                _ => "the server refused",
            };
            let text = if result.text.is_empty() {
                String::new()
            } else {
                format!(": {}", result.text)
            };
            format!("{what} (LDAP result {}){text}", result.rc)
        }
        LdapError::Timeout { .. } => {
            "no answer within timeout_seconds (is the server up, and is this its LDAP port?)"
                .to_string()
        }
        other => other.to_string(),
    }
}
