//! Groups: who a rule applies to. A person belongs to every group whose role, year
//! group and membership conditions they meet; a client address belongs to every group
//! whose network ranges contain it.

use std::net::IpAddr;

use ipnet::IpNet;

/// Index of a group in the compiled policy (declaration order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u8);

/// A set of groups. Policies have at most [`GroupSet::CAPACITY`] groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GroupSet(u128);

impl GroupSet {
    pub const CAPACITY: usize = 128;
    pub const EMPTY: GroupSet = GroupSet(0);

    pub const fn from_bits(bits: u128) -> Self {
        Self(bits)
    }

    pub const fn bits(&self) -> u128 {
        self.0
    }

    pub fn single(id: GroupId) -> Self {
        Self::EMPTY.with(id)
    }

    #[must_use]
    pub fn with(mut self, id: GroupId) -> Self {
        self.insert(id);
        self
    }

    pub fn insert(&mut self, id: GroupId) {
        if usize::from(id.0) < Self::CAPACITY {
            self.0 |= 1 << id.0;
        }
    }

    pub fn contains(&self, id: GroupId) -> bool {
        usize::from(id.0) < Self::CAPACITY && self.0 & (1 << id.0) != 0
    }

    pub fn intersects(&self, other: GroupSet) -> bool {
        self.0 & other.0 != 0
    }

    pub fn is_subset(&self, other: GroupSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Members in ascending order (visits set bits only: used on the hot path).
    pub fn iter(&self) -> impl Iterator<Item = GroupId> + '_ {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros();
            bits &= bits - 1;
            u8::try_from(i).ok().map(GroupId)
        })
    }
}

impl std::ops::BitOr for GroupSet {
    type Output = GroupSet;
    fn bitor(self, rhs: GroupSet) -> GroupSet {
        GroupSet(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for GroupSet {
    fn bitor_assign(&mut self, rhs: GroupSet) {
        self.0 |= rhs.0;
    }
}

/// What the school's records say about a person, for [`crate::Policy::groups_for_person`].
#[derive(Debug, Clone, Copy)]
pub struct PersonAttrs<'a> {
    /// e.g. `student`, `staff`, `guest`.
    pub role: &'a str,
    pub year_group: Option<u8>,
    /// Named memberships from the MIS, e.g. `marketing`.
    pub memberships: &'a [&'a str],
}

/// A compiled group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) roles: Vec<String>,
    pub(crate) years: Vec<u8>,
    pub(crate) memberships: Vec<String>,
    pub(crate) networks: Vec<IpNet>,
    pub(crate) default: crate::decide::DefaultAction,
    pub(crate) safe_search: crate::SafeSearch,
}

impl Group {
    /// A group with no person conditions is never matched from person attributes
    /// (it is reached by network, by being the unidentified group, or explicitly).
    pub(crate) fn matches_person(&self, p: &PersonAttrs<'_>) -> bool {
        if self.roles.is_empty() && self.years.is_empty() && self.memberships.is_empty() {
            return false;
        }
        let role_ok =
            self.roles.is_empty() || self.roles.iter().any(|r| r.eq_ignore_ascii_case(p.role));
        let year_ok =
            self.years.is_empty() || p.year_group.is_some_and(|y| self.years.contains(&y));
        let member_ok = self.memberships.is_empty()
            || self
                .memberships
                .iter()
                .any(|m| p.memberships.iter().any(|pm| pm.eq_ignore_ascii_case(m)));
        role_ok && year_ok && member_ok
    }

    pub(crate) fn matches_ip(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(&ip))
    }
}
