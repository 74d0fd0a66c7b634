//! The event ids seen so far, for `event_id_unique`: one table entry per event of the log, so
//! the hash is a folded multiply (as foldhash's) of the id's two halves, keyed per checker from
//! the standard library's random keys — a few nanoseconds instead of SipHash's tens, and an
//! export cannot be built to collide the table without knowing the keys.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use uuid::Uuid;

/// Every event id seen, with the position of the commit that holds it.
#[derive(Debug, Default)]
pub(super) struct EventIds {
    seen: HashMap<(u64, u64), u64, Keys>,
}

impl EventIds {
    /// Records `id` at `position`; the position it was first seen at, if it was.
    pub(super) fn insert(&mut self, id: Uuid, position: u64) -> Option<u64> {
        let (hi, lo) = id.as_u64_pair();
        match self.seen.entry((hi, lo)) {
            std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(position);
                None
            }
        }
    }
}

/// The table's hash keys.
#[derive(Clone, Copy, Debug)]
struct Keys(u64, u64);

impl Default for Keys {
    fn default() -> Self {
        let random = RandomState::new();
        Keys(random.hash_one(1_u64), random.hash_one(2_u64))
    }
}

impl BuildHasher for Keys {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            keys: *self,
            first: None,
            hash: self.0,
        }
    }
}

/// Hashes the two `u64` halves of an id (any other input, a byte at a time).
#[derive(Debug)]
struct IdHasher {
    keys: Keys,
    first: Option<u64>,
    hash: u64,
}

/// The folded multiply: the two halves of the 128-bit product, xored.
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write_u64(&mut self, v: u64) {
        match self.first.take() {
            None => self.first = Some(v),
            Some(a) => self.hash = fold(a ^ self.keys.0, v ^ self.keys.1),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.hash = fold(self.hash ^ u64::from(*b), self.keys.1 | 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_found_again_and_others_are_not() {
        let mut ids = EventIds::default();
        let a = Uuid::new_v4();
        assert_eq!(ids.insert(a, 3), None);
        for p in 4..10_000 {
            assert_eq!(ids.insert(Uuid::new_v4(), p), None);
        }
        // Ids differing in one half only are different ids.
        let (hi, lo) = a.as_u64_pair();
        assert_eq!(ids.insert(Uuid::from_u64_pair(hi, lo ^ 1), 10_000), None);
        assert_eq!(ids.insert(Uuid::from_u64_pair(hi ^ 1, lo), 10_001), None);
        assert_eq!(ids.insert(a, 10_002), Some(3));
    }
}
