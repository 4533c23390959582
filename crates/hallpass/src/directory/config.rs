//! The `[directory]` configuration file of `hallpass directory sync`: where the directory
//! is, how to bind, which entries are people, and which attributes and groups say what.
//! Checked whole when loaded: every mistake names the file and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The file: one `[directory]` table (so it can later move into the serve configuration).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    directory: DirectoryConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldap://HOST[:PORT]` or `ldaps://HOST[:PORT]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    pub starttls: bool,
    /// The account to bind as; none: an anonymous bind.
    pub bind_dn: Option<String>,
    /// A file holding the bind password (its first line).
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the bind password.
    pub password_env: Option<String>,
    /// Where people are searched (subtree).
    pub base_dn: String,
    /// Which entries under `base_dn` are people.
    #[serde(default = "default_filter")]
    pub filter: String,
    /// Entries per page of the simple paged results control (Active Directory returns at
    /// most 1000 per page).
    #[serde(default = "default_page_size")]
    pub page_size: i32,
    /// Seconds to wait for the server to connect or answer one operation.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub attributes: Attributes,
    /// Where memberships are read: `member_of` (the user's memberOf attribute, as Active
    /// Directory and OpenLDAP's memberof overlay keep it) or `group_member` (each configured
    /// group's `member` attribute).
    #[serde(default)]
    pub membership: Membership,
    /// Role rules, first match wins.
    #[serde(default)]
    pub roles: Vec<RoleRule>,
    /// The role of a person no rule matches; none: such an entry is skipped and reported.
    pub default_role: Option<String>,
    /// Directory group DN -> Hallpass group name (the policy's group). A person's groups
    /// are replaced by the mapped groups they are in; other groups are ignored.
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
    /// Site code for every person synced (trusts with one directory per school).
    pub site: Option<String>,
}

/// Attribute names. Defaults suit OpenLDAP's inetOrgPerson; Active Directory uses
/// `sAMAccountName` for the username.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Attributes {
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub mis_id: String,
    pub year_group: Option<String>,
    pub form: Option<String>,
    pub member_of: String,
    /// On group objects, with `membership = "group_member"`.
    pub group_member: String,
}

impl Default for Attributes {
    fn default() -> Self {
        Attributes {
            username: "uid".into(),
            display_name: "displayName".into(),
            email: "mail".into(),
            mis_id: "employeeNumber".into(),
            year_group: None,
            form: None,
            member_of: "memberOf".into(),
            group_member: "member".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    #[default]
    MemberOf,
    GroupMember,
}

/// `role` for a person in `group` (a group DN) or under `ou` (a DN the entry's DN ends
/// with). Exactly one of the two.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRule {
    pub role: String,
    pub group: Option<String>,
    pub ou: Option<String>,
}

fn default_filter() -> String {
    "(objectClass=person)".into()
}
fn default_page_size() -> i32 {
    500
}
fn default_timeout() -> u64 {
    10
}

fn is_role_name(role: &str) -> bool {
    !role.is_empty()
        && role
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl DirectoryConfig {
    /// Read and check `path`.
    pub fn load(path: &Path) -> anyhow::Result<DirectoryConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the directory configuration {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<DirectoryConfig> {
        let file: DirectoryFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let cfg = file.directory;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> anyhow::Result<()> {
        let scheme_ok = self.url.starts_with("ldap://") || self.url.starts_with("ldaps://");
        anyhow::ensure!(
            scheme_ok,
            "directory.url {:?}: expected ldap://HOST[:PORT] or ldaps://HOST[:PORT]",
            self.url
        );
        anyhow::ensure!(
            !(self.starttls && self.url.starts_with("ldaps://")),
            "directory.starttls: an ldaps:// connection is already TLS; use ldap:// with starttls"
        );
        match (&self.bind_dn, &self.password_file, &self.password_env) {
            (_, Some(_), Some(_)) => {
                anyhow::bail!("directory: give password_file or password_env, not both")
            }
            (Some(dn), None, None) => anyhow::bail!(
                "directory.bind_dn {dn:?} has no password: give password_file (a file only \
                 Hallpass's user can read) or password_env (an environment variable)"
            ),
            (None, Some(_), _) | (None, _, Some(_)) => {
                anyhow::bail!("directory: a password is given but no bind_dn to bind as")
            }
            _ => {}
        }
        anyhow::ensure!(
            !self.base_dn.trim().is_empty(),
            "directory.base_dn is empty"
        );
        anyhow::ensure!(
            self.filter.starts_with('(') && self.filter.ends_with(')'),
            "directory.filter {:?}: an LDAP filter is in parentheses, e.g. (objectClass=person)",
            self.filter
        );
        anyhow::ensure!(
            (1..=1000).contains(&self.page_size),
            "directory.page_size {}: expected 1 to 1000",
            self.page_size
        );
        anyhow::ensure!(
            (1..=600).contains(&self.timeout_seconds),
            "directory.timeout_seconds {}: expected 1 to 600",
            self.timeout_seconds
        );
        for (i, rule) in self.roles.iter().enumerate() {
            let n = i + 1;
            anyhow::ensure!(
                is_role_name(&rule.role),
                "directory.roles[{n}].role {:?}: a role name is lowercase letters, digits, - and _",
                rule.role
            );
            anyhow::ensure!(
                rule.group.is_some() != rule.ou.is_some(),
                "directory.roles[{n}] (role {}): give exactly one of group (a group DN) or ou \
                 (a DN people are under)",
                rule.role
            );
        }
        if let Some(role) = &self.default_role {
            anyhow::ensure!(
                is_role_name(role),
                "directory.default_role {role:?}: a role name is lowercase letters, digits, - and _"
            );
        }
        for (dn, name) in &self.groups {
            anyhow::ensure!(
                !name.trim().is_empty()
                    && !name.contains(';')
                    && !name.chars().any(char::is_control),
                "directory.groups {dn:?} = {name:?}: a group name is not empty and has no `;` \
                 or control characters"
            );
        }
        Ok(())
    }

    /// The bind password, from the file or environment variable the configuration names.
    /// Never logged, never taken from the command line.
    pub fn password(&self) -> anyhow::Result<Option<String>> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the bind password file {}", path.display()))?;
            let line = text.lines().next().unwrap_or_default();
            anyhow::ensure!(
                !line.is_empty(),
                "the bind password file {} is empty",
                path.display()
            );
            return Ok(Some(line.to_string()));
        }
        if let Some(var) = &self.password_env {
            let value = std::env::var(var).with_context(|| {
                format!("the bind password's environment variable {var} is not set")
            })?;
            anyhow::ensure!(
                !value.is_empty(),
                "the bind password's environment variable {var} is empty"
            );
            return Ok(Some(value));
        }
        Ok(None)
    }

    /// Every group DN the configuration names (mapped groups and role rules' groups).
    pub fn group_dns(&self) -> Vec<String> {
        let mut dns: Vec<String> = self
            .groups
            .keys()
            .cloned()
            .chain(self.roles.iter().filter_map(|r| r.group.clone()))
            .collect();
        dns.sort();
        dns.dedup();
        dns
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[directory]\nurl = \"ldap://dc1\"\nbase_dn = \"dc=s\"\n";

    fn error_of(extra: &str) -> String {
        let text = format!("{MINIMAL}{extra}");
        format!("{:#}", DirectoryConfig::parse(&text).unwrap_err())
    }

    #[test]
    fn defaults_and_mistakes_named_by_field() {
        let cfg = DirectoryConfig::parse(MINIMAL).unwrap();
        assert_eq!(cfg.attributes.username, "uid");
        assert_eq!(cfg.page_size, 500);
        assert_eq!(cfg.password().unwrap(), None);
        assert!(error_of("bind_dn = \"cn=x\"\n").contains("has no password"));
        assert!(error_of("page_size = 5000\n").contains("directory.page_size 5000"));
        assert!(error_of("filter = \"uid=*\"\n").contains("directory.filter"));
        assert!(error_of("[[directory.roles]]\nrole = \"staff\"\n").contains("roles[1]"));
        assert!(
            error_of("[[directory.roles]]\nrole = \"Staff!\"\nou = \"x\"\n")
                .contains("roles[1].role")
        );
        assert!(error_of("[directory.groups]\n\"cn=g\" = \"a;b\"\n").contains("cn=g"));
        // An unknown key is a typo, not ignored: toml names the key and line.
        let typo = error_of("bind_pasword = \"x\"\n");
        assert!(
            typo.contains("bind_pasword") && typo.contains("line 4"),
            "{typo}"
        );
        let url = DirectoryConfig::parse(&MINIMAL.replace("ldap://dc1", "http://dc1"));
        assert!(format!("{:#}", url.unwrap_err()).contains("directory.url"));
    }
}
