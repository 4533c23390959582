//! `CategorySet`: a 256-bit set of category ids.

/// A set of category ids (0..=255), exchanged with the policy crate as `[u64; 4]`
/// where bit `i` stands for category id `i`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CategorySet([u64; 4]);

impl CategorySet {
    /// The empty set.
    pub const EMPTY: CategorySet = CategorySet([0; 4]);

    /// The set as four words; bit `i` (word `i / 64`, bit `i % 64`) is category id `i`.
    pub const fn bits(&self) -> [u64; 4] {
        self.0
    }

    /// The set from four words, as produced by [`CategorySet::bits`].
    pub const fn from_bits(bits: [u64; 4]) -> Self {
        CategorySet(bits)
    }

    /// The set holding one category.
    pub const fn single(id: u8) -> Self {
        let mut s = CategorySet::EMPTY;
        s.0[(id / 64) as usize] |= 1u64 << (id % 64);
        s
    }

    pub fn insert(&mut self, id: u8) {
        self.0[(id / 64) as usize] |= 1u64 << (id % 64);
    }

    pub const fn contains(&self, id: u8) -> bool {
        self.0[(id / 64) as usize] & (1u64 << (id % 64)) != 0
    }

    pub const fn is_empty(&self) -> bool {
        self.0[0] == 0 && self.0[1] == 0 && self.0[2] == 0 && self.0[3] == 0
    }

    /// Number of categories in the set.
    pub const fn len(&self) -> usize {
        (self.0[0].count_ones()
            + self.0[1].count_ones()
            + self.0[2].count_ones()
            + self.0[3].count_ones()) as usize
    }

    pub const fn union(self, other: CategorySet) -> CategorySet {
        CategorySet([
            self.0[0] | other.0[0],
            self.0[1] | other.0[1],
            self.0[2] | other.0[2],
            self.0[3] | other.0[3],
        ])
    }

    /// The ids in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u8> + use<> {
        let words = self.0;
        (0..4usize).flat_map(move |w| {
            let mut word = words[w];
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let bit = word.trailing_zeros();
                word &= word - 1;
                Some((w as u32 * 64 + bit) as u8)
            })
        })
    }
}

impl std::ops::BitOr for CategorySet {
    type Output = CategorySet;
    fn bitor(self, rhs: CategorySet) -> CategorySet {
        self.union(rhs)
    }
}

impl std::ops::BitOrAssign for CategorySet {
    fn bitor_assign(&mut self, rhs: CategorySet) {
        *self = self.union(rhs);
    }
}

impl std::fmt::Debug for CategorySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<u8> for CategorySet {
    fn from_iter<T: IntoIterator<Item = u8>>(iter: T) -> Self {
        let mut s = CategorySet::EMPTY;
        for id in iter {
            s.insert(id);
        }
        s
    }
}
