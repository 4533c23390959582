//! Who is at an address: the logon sessions, resolved to policy groups once per snapshot
//! so that a request only does a hash lookup. A person who has not accepted the current
//! version of every acceptable-use declaration the policy names gets the policy's
//! restricted group instead of their own (fail closed, 000 §14).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use hallpass_policy::{GroupSet, PersonAttrs, Policy};

/// A logged-on person as the enforcement points need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub username: Arc<str>,
    pub role: String,
    pub year_group: Option<String>,
    pub memberships: Vec<String>,
    /// The (document, version) declarations the person has accepted.
    pub accepted: BTreeSet<(String, String)>,
}

impl Person {
    /// Whether the person accepted `document` at `version`.
    pub fn has_accepted(&self, document: &str, version: &str) -> bool {
        self.accepted
            .iter()
            .any(|(d, v)| d == document && v == version)
    }
}

/// A session's person and the groups the policy applies to them.
#[derive(Debug, Clone)]
pub struct Identified {
    pub person: Arc<Person>,
    pub groups: GroupSet,
    /// A declaration is pending: `groups` is the restricted group alone, and no network
    /// group is added to it.
    pub restricted: bool,
}

/// Addresses of active logon sessions, with each person's groups under one policy.
#[derive(Debug, Default)]
pub struct IdentityMap {
    by_ip: HashMap<IpAddr, Identified>,
}

impl IdentityMap {
    /// Resolves every session's person to groups under `policy` (the restricted group for
    /// a person with a pending declaration). When two sessions claim one address, the
    /// later in `sessions` wins (the most recent logon).
    pub fn build(
        policy: &Policy,
        sessions: impl IntoIterator<Item = (IpAddr, Person)>,
    ) -> IdentityMap {
        let by_ip = sessions
            .into_iter()
            .map(|(ip, person)| {
                let restricted = person.restricted_groups(policy).is_some();
                let identified = Identified {
                    groups: person.groups(policy),
                    person: Arc::new(person),
                    restricted,
                };
                (ip, identified)
            })
            .collect();
        IdentityMap { by_ip }
    }

    pub fn get(&self, ip: IpAddr) -> Option<&Identified> {
        self.by_ip.get(&ip)
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// The same sessions as `other` (so a rebuild can be skipped).
    pub fn same_people(&self, other: &IdentityMap) -> bool {
        self.by_ip.len() == other.by_ip.len()
            && self
                .by_ip
                .iter()
                .all(|(ip, a)| other.by_ip.get(ip).is_some_and(|b| a.person == b.person))
    }
}

impl Person {
    /// The policy's restricted group while this person has a declaration to accept
    /// (000 §14: fail closed until they do); `None` when nothing is pending.
    pub fn restricted_groups(&self, policy: &Policy) -> Option<GroupSet> {
        policy.restricted_groups().filter(|_| {
            policy
                .pending_declarations(|doc, version| self.has_accepted(doc, version))
                .next()
                .is_some()
        })
    }

    /// The policy's groups for this person, without any network group: the restricted
    /// group alone while a declaration is pending, else those of their role, year and
    /// memberships. Also used for a person identified by proxy authentication.
    pub fn groups(&self, policy: &Policy) -> GroupSet {
        self.restricted_groups(policy).unwrap_or_else(|| {
            let memberships: Vec<&str> = self.memberships.iter().map(String::as_str).collect();
            policy.groups_for_person(&PersonAttrs {
                role: &self.role,
                year_group: self.year_group.as_deref().and_then(parse_year_group),
                memberships: &memberships,
            })
        })
    }
}

/// MIS exports write year groups as `7`, `Y7`, `Year 7`; the policy wants the number.
pub fn parse_year_group(text: &str) -> Option<u8> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Who made a request: the person if a session says so, and the groups the policy
/// applies (the person's, plus any network-range groups, else the unidentified group).
#[derive(Debug, Clone)]
pub struct Who {
    pub person: Option<Arc<Person>>,
    pub groups: GroupSet,
    /// The person has a declaration to accept and is in the restricted group for now.
    pub restricted: bool,
}

#[cfg(test)]
mod tests {
    use super::parse_year_group;

    #[test]
    fn year_groups_as_schools_write_them() {
        assert_eq!(parse_year_group("7"), Some(7));
        assert_eq!(parse_year_group("Y10"), Some(10));
        assert_eq!(parse_year_group("Year 12"), Some(12));
        assert_eq!(parse_year_group("staff"), None);
    }
}
