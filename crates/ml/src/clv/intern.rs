//! Dense numbering of distinct keys in order of first appearance, with a small multiplicative
//! hasher: the fits collapse up to millions of summaries into distinct frequencies, recencies,
//! ages and patterns, and SipHash or sorting would cost more than the likelihood itself.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash's mixing step (as in rustc) with a finaliser: fast and good enough for keys that no
/// adversary chooses.
#[derive(Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        // MurmurHash3's finaliser: the keys include float bit patterns whose low bits are all
        // zero (whole numbers of days), which the multiplication alone leaves zero, and the
        // table indexes by the low bits.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.hash = (self.hash.rotate_left(5) ^ value).wrapping_mul(SEED);
    }
}

/// Numbers distinct keys 0, 1, 2, ... in order of first appearance.
pub(crate) struct Interner<K> {
    map: HashMap<K, u32, BuildHasherDefault<FxHasher>>,
}

impl<K: std::hash::Hash + Eq> Interner<K> {
    pub(crate) fn new() -> Self {
        Interner { map: HashMap::default() }
    }

    /// An interner with room for `capacity` keys before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Interner { map: HashMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default()) }
    }

    /// The key's number and whether it is new.
    pub(crate) fn intern(&mut self, key: K) -> (u32, bool) {
        let next = self.map.len() as u32;
        let mut new = false;
        let index = *self.map.entry(key).or_insert_with(|| {
            new = true;
            next
        });
        (index, new)
    }
}

/// The bits of a non-negative finite value, with -0.0 folded into 0.0, as a hash key.
pub(crate) fn key(value: f64) -> u64 {
    (value + 0.0).to_bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keys_in_order_of_first_appearance() {
        let mut interner = Interner::new();
        let got: Vec<(u32, bool)> = [7u64, 3, 7, 9, 3].iter().map(|k| interner.intern(*k)).collect();
        assert_eq!(got, [(0, true), (1, true), (0, false), (2, true), (1, false)]);
        assert_eq!(key(-0.0), key(0.0));
    }
}
