//! Bounded caches keyed by a SHA-256 of what was verified, shared by parallel appraisals.
//! The lock is held only to look up or insert, never while verifying, and a cached value is
//! used only when the caller says it still holds at the verification time, so a miss gives
//! the same answer as no cache at all.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Hits and misses of one cache since it was made, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Entries held now.
    pub entries: usize,
    /// Most entries held; the cache is cleared when an insert finds it full.
    pub capacity: usize,
}

/// A map from content digest to a verified result, at most `capacity` entries.
#[derive(Debug)]
pub struct DigestCache<V> {
    entries: Mutex<HashMap<[u8; 32], V>>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<V: Clone> DigestCache<V> {
    /// A cache of at most `capacity` entries (0 keeps nothing).
    pub fn with_capacity(capacity: usize) -> Self {
        DigestCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The value under `key` if `usable` accepts it; an entry it refuses is dropped, so
    /// nothing stays cached past what it depends on.
    pub fn get(&self, key: &[u8; 32], usable: impl FnOnce(&V) -> bool) -> Option<V> {
        let found = match self.entries.lock() {
            Ok(mut entries) => match entries.get(key) {
                Some(value) if usable(value) => Some(value.clone()),
                Some(_) => {
                    entries.remove(key);
                    None
                }
                None => None,
            },
            Err(_) => None,
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Remembers `value` under `key`, clearing the cache first when it is full (a miss only
    /// costs a verification, and clearing keeps the bound simple and exact).
    pub fn insert(&self, key: [u8; 32], value: V) {
        if self.capacity == 0 {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity && !entries.contains_key(&key) {
                entries.clear();
            }
            entries.insert(key, value);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every entry (the counters stay).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.len(),
            capacity: self.capacity,
        }
    }
}

/// The caches GPU verification uses, shared by every appraisal of a verifier.
#[derive(Debug, Default)]
pub struct GpuCaches {
    /// Verified device identity chains.
    pub chains: crate::chain::ChainCache,
    /// Verified RIM signatures and signer chains.
    pub rims: crate::rim::RimCache,
}

impl GpuCaches {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything (e.g. after the trusted roots changed).
    pub fn clear(&self) {
        self.chains.clear();
        self.rims.clear();
    }
}

/// SHA-256 over `parts`, each prefixed by its length, so no two lists of parts share a key.
pub fn digest_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_entries_are_dropped_and_counted_as_misses() {
        let cache = DigestCache::with_capacity(2);
        cache.insert([1; 32], 10);
        assert_eq!(cache.get(&[1; 32], |_| true), Some(10));
        assert_eq!(cache.get(&[1; 32], |v| *v > 10), None);
        assert!(cache.is_empty(), "a refused entry must not stay cached");
        assert_eq!(cache.get(&[2; 32], |_| true), None);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 2, 0));
    }

    #[test]
    fn a_full_cache_is_cleared_and_never_exceeds_its_capacity() {
        let cache = DigestCache::with_capacity(2);
        for i in 0..5u8 {
            cache.insert([i; 32], i);
            assert!(cache.len() <= 2);
        }
        assert_eq!(cache.get(&[4; 32], |_| true), Some(4));
        let none = DigestCache::with_capacity(0);
        none.insert([0; 32], 0);
        assert!(none.is_empty());
    }

    #[test]
    fn keys_separate_the_parts() {
        assert_ne!(
            digest_parts([&b"ab"[..], b"c"]),
            digest_parts([&b"a"[..], b"bc"])
        );
    }
}
