//! Who is at an address: the logon sessions, resolved to policy groups once per snapshot
//! so that a request only does a hash lookup.

use std::collections::HashMap;
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
}

/// Addresses of active logon sessions, with each person's groups under one policy.
#[derive(Debug, Default)]
pub struct IdentityMap {
    by_ip: HashMap<IpAddr, (Arc<Person>, GroupSet)>,
}

impl IdentityMap {
    /// Resolves every session's person to groups under `policy`. When two sessions claim
    /// one address, the later in `sessions` wins (the most recent logon).
    pub fn build(
        policy: &Policy,
        sessions: impl IntoIterator<Item = (IpAddr, Person)>,
    ) -> IdentityMap {
        let by_ip = sessions
            .into_iter()
            .map(|(ip, person)| {
                let groups = person.groups(policy);
                (ip, (Arc::new(person), groups))
            })
            .collect();
        IdentityMap { by_ip }
    }

    pub fn get(&self, ip: IpAddr) -> Option<&(Arc<Person>, GroupSet)> {
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
                .all(|(ip, (person, _))| other.by_ip.get(ip).is_some_and(|(p, _)| p == person))
    }
}

impl Person {
    /// The policy's groups for this person (their role, year and memberships), without
    /// any network group. Also used for a person identified by proxy authentication.
    pub fn groups(&self, policy: &Policy) -> GroupSet {
        let memberships: Vec<&str> = self.memberships.iter().map(String::as_str).collect();
        policy.groups_for_person(&PersonAttrs {
            role: &self.role,
            year_group: self.year_group.as_deref().and_then(parse_year_group),
            memberships: &memberships,
        })
    }
}

/// MIS exports write year groups as `7`, `Y7`, `Year 7`; the policy wants the number.
fn parse_year_group(text: &str) -> Option<u8> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Who made a request: the person if a session says so, and the groups the policy
/// applies (the person's, plus any network-range groups, else the unidentified group).
#[derive(Debug, Clone)]
pub struct Who {
    pub person: Option<Arc<Person>>,
    pub groups: GroupSet,
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
