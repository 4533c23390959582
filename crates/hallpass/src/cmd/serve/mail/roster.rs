//! The roster as the mail filter knows people: by email address, username, or a SASL
//! login; shared by the relay and `hallpass mail check`.

use std::collections::HashMap;

use anyhow::Context as _;
use hallpass_policy::{GroupSet, PersonAttrs, Policy};
use hallpass_store::Store;

/// A person on the roster, as mail rules need them.
pub(crate) struct RosterEntry {
    pub(crate) username: String,
    role: String,
    year_group: Option<u8>,
    memberships: Vec<String>,
}

/// The people on the roster still at the school, found by email address or username.
#[derive(Default)]
pub(crate) struct Roster {
    people: Vec<RosterEntry>,
    by_email: HashMap<String, usize>,
    by_username: HashMap<String, usize>,
}

impl Roster {
    /// Who sent a message: the person `login` names when there is one, else the owner
    /// of `sender`. A login is a username, an address, or `username@domain` with one of
    /// the school's mail domains (Cyrus SASL adds the realm: `smtpd_sasl_local_domain`).
    pub(crate) fn find(
        &self,
        login: Option<&str>,
        sender: &str,
        policy: &Policy,
    ) -> Option<&RosterEntry> {
        let key = |s: &str| s.trim().to_ascii_lowercase();
        let by_login = login.and_then(|login| {
            let login = key(login);
            let in_realm = login
                .rsplit_once('@')
                .filter(|_| policy.mail().is_internal(&login))
                .and_then(|(user, _)| self.by_username.get(user));
            self.by_username
                .get(&login)
                .or_else(|| self.by_email.get(&login))
                .or(in_realm)
        });
        let at = by_login.or_else(|| self.by_email.get(&key(sender)))?;
        self.people.get(*at)
    }

    /// The people on the roster who have not left.
    pub(crate) async fn load(store: &Store) -> anyhow::Result<Roster> {
        let people = store.people().list().await.context("reading the roster")?;
        let mut roster = Roster::default();
        for p in people.into_iter().filter(|p| p.left_at.is_none()) {
            let at = roster.people.len();
            if let Some(email) = &p.email {
                roster
                    .by_email
                    .insert(email.trim().to_ascii_lowercase(), at);
            }
            roster
                .by_username
                .insert(p.username.to_ascii_lowercase(), at);
            roster.people.push(RosterEntry {
                username: p.username,
                role: p.role,
                year_group: p
                    .year_group
                    .as_deref()
                    .and_then(hallpass_engine::parse_year_group),
                memberships: p.groups,
            });
        }
        Ok(roster)
    }
}

impl RosterEntry {
    /// The policy's groups for this person.
    pub(crate) fn groups(&self, policy: &Policy) -> GroupSet {
        let memberships: Vec<&str> = self.memberships.iter().map(String::as_str).collect();
        policy.groups_for_person(&PersonAttrs {
            role: &self.role,
            year_group: self.year_group,
            memberships: &memberships,
        })
    }
}
