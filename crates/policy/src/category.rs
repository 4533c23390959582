//! Category names and 256-bit category sets, as exchanged with the catalog.

use std::collections::HashMap;

/// A set of category ids (bit `i` = category id `i`), as produced by the catalog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CategoryMask([u64; 4]);

impl CategoryMask {
    pub const EMPTY: CategoryMask = CategoryMask([0; 4]);

    pub const fn from_bits(bits: [u64; 4]) -> Self {
        Self(bits)
    }

    pub const fn bits(&self) -> [u64; 4] {
        self.0
    }

    // Indexing below cannot panic: `id / 64` is at most 3 for a `u8`.
    pub fn insert(&mut self, id: u8) {
        self.0[usize::from(id / 64)] |= 1 << (id % 64);
    }

    #[must_use]
    pub fn with(mut self, id: u8) -> Self {
        self.insert(id);
        self
    }

    pub fn contains(&self, id: u8) -> bool {
        self.0[usize::from(id / 64)] & (1 << (id % 64)) != 0
    }

    pub fn intersects(&self, other: &CategoryMask) -> bool {
        self.0.iter().zip(other.0.iter()).any(|(a, b)| a & b != 0)
    }

    /// Every id in `self` is also in `other`.
    pub fn is_subset(&self, other: &CategoryMask) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & !b == 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// Category ids in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        self.0.iter().enumerate().flat_map(|(word, &bits)| {
            let mut bits = bits;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                u8::try_from(word * 64 + i).ok()
            })
        })
    }
}

/// The category names a policy may use, with their ids. Built from the catalog's
/// `(name, id)` pairs (aliases included), or [`CategoryVocab::open`] when there is no
/// catalog: then any name is accepted and the policy numbers the names itself.
#[derive(Debug, Clone, Default)]
pub struct CategoryVocab {
    ids: HashMap<String, u8>,
    /// Names in the order given: the first name for an id is the one shown to people.
    order: Vec<(String, u8)>,
    open: bool,
}

impl CategoryVocab {
    pub fn new<S: Into<String>>(pairs: impl IntoIterator<Item = (S, u8)>) -> Self {
        let order: Vec<(String, u8)> = pairs.into_iter().map(|(n, id)| (n.into(), id)).collect();
        let ids = order.iter().cloned().collect();
        Self {
            ids,
            order,
            open: false,
        }
    }

    /// Accept every category name (no catalog at hand).
    pub fn open() -> Self {
        Self {
            ids: HashMap::new(),
            order: Vec::new(),
            open: true,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn id(&self, name: &str) -> Option<u8> {
        self.ids.get(name).copied()
    }

    /// All names, sorted, for "did you mean" style messages.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.ids.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, u8)> {
        self.order.iter().map(|(n, id)| (n.as_str(), *id))
    }
}

#[cfg(test)]
mod tests {
    use super::CategoryMask;

    #[test]
    fn iterates_ids_in_order_across_words() {
        let m = CategoryMask::EMPTY
            .with(255)
            .with(0)
            .with(64)
            .with(63)
            .with(130);
        assert_eq!(m.iter().collect::<Vec<_>>(), [0, 63, 64, 130, 255]);
        assert!(CategoryMask::EMPTY.iter().next().is_none());
    }
}
