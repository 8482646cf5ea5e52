//! The verifier's caches, shared by parallel appraisals: compiled baselines (here) and the
//! GPU caches of `vigil-nvidia` (verified device chains and RIMs). Every key is a digest of
//! the content the cached result was computed from, so a changed input is a miss, and a miss
//! gives the same answer as no cache.

use std::sync::Arc;

use serde::Serialize;
use vigil_nvidia::cache::{CacheStats, DigestCache, digest_parts};

use crate::attest::compile_stored;
use crate::baseline::{Baseline, BaselineError};
use crate::store_baselines::StoredBaseline;

/// Most compiled baselines remembered (one per group and version in use).
pub const MAX_CACHED_BASELINES: usize = 256;

/// Compiled baselines keyed by name, version, the stored digest and the SHA-256 of the stored
/// text. Baselines do not expire (time enters at appraisal), and failures are not cached.
#[derive(Debug)]
pub struct BaselineCache {
    cache: DigestCache<Arc<Baseline>>,
}

impl Default for BaselineCache {
    fn default() -> Self {
        Self::with_capacity(MAX_CACHED_BASELINES)
    }
}

impl BaselineCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        BaselineCache {
            cache: DigestCache::with_capacity(capacity),
        }
    }

    fn key(stored: &StoredBaseline) -> [u8; 32] {
        let version = stored.version.to_be_bytes();
        let body = ring::digest::digest(&ring::digest::SHA256, stored.body.as_bytes());
        digest_parts([
            stored.name.as_bytes(),
            &version[..],
            stored.sha256.as_bytes(),
            body.as_ref(),
        ])
    }

    /// [`compile_stored`], answering from the cache when the same text was compiled before.
    pub fn compile(&self, stored: &StoredBaseline) -> Result<Arc<Baseline>, BaselineError> {
        let key = Self::key(stored);
        if let Some(hit) = self.cache.get(&key, |_| true) {
            return Ok(hit);
        }
        let compiled = Arc::new(compile_stored(stored)?);
        self.cache.insert(key, Arc::clone(&compiled));
        Ok(compiled)
    }

    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }
}

/// Every cache a [`crate::attest::Verifier`] keeps.
#[derive(Debug, Default)]
pub struct VerificationCaches {
    /// Verified NVIDIA device chains and RIMs.
    pub gpu: vigil_nvidia::GpuCaches,
    pub baselines: BaselineCache,
}

/// Hits and misses of each cache, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CachesStats {
    pub device_chains: CacheStats,
    pub rim_signatures: CacheStats,
    pub rim_chains: CacheStats,
    pub baselines: CacheStats,
}

impl VerificationCaches {
    pub fn new() -> Self {
        Self::default()
    }

    /// Caches that keep nothing: every appraisal verifies everything again.
    pub fn disabled() -> Self {
        VerificationCaches {
            gpu: vigil_nvidia::GpuCaches {
                chains: vigil_nvidia::ChainCache::with_capacity(0),
                rims: vigil_nvidia::RimCache::with_capacity(0),
            },
            baselines: BaselineCache::with_capacity(0),
        }
    }

    pub fn stats(&self) -> CachesStats {
        CachesStats {
            device_chains: self.gpu.chains.stats(),
            rim_signatures: self.gpu.rims.stats(),
            rim_chains: self.gpu.rims.chain_stats(),
            baselines: self.baselines.stats(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(version: i64, body: &str) -> StoredBaseline {
        StoredBaseline {
            name: "x".into(),
            version,
            sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, body.as_bytes())),
            body: body.into(),
            author: "a".into(),
            reason: "r".into(),
            created_at: 0,
            signed_by: None,
            rules: 1,
        }
    }

    const EIGHT: &str = "format = 1\nname = \"x\"\n[gpu]\ncount = 8\n";
    const FOUR: &str = "format = 1\nname = \"x\"\n[gpu]\ncount = 4\n";

    #[test]
    fn a_hit_is_the_compiled_baseline_and_changed_content_is_a_miss() {
        let cache = BaselineCache::new();
        let first = cache.compile(&stored(1, EIGHT)).unwrap();
        let again = cache.compile(&stored(1, EIGHT)).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(cache.stats().hits, 1);
        let uncached = compile_stored(&stored(1, EIGHT)).unwrap();
        assert_eq!(first.rules, uncached.rules);
        assert_eq!(first.reference, uncached.reference);
        // Same name and version, other text: compiled again, never the cached one.
        let changed = cache.compile(&stored(1, FOUR)).unwrap();
        assert_eq!(
            changed.rules,
            compile_stored(&stored(1, FOUR)).unwrap().rules
        );
        assert_ne!(changed.rules, first.rules);
        assert_eq!(cache.stats().misses, 2);
    }

    #[test]
    fn errors_are_returned_and_not_cached() {
        let cache = BaselineCache::new();
        assert!(cache.compile(&stored(2, "not toml [")).is_err());
        assert!(cache.compile(&stored(2, "not toml [")).is_err());
        assert!(cache.is_empty());
        let off = VerificationCaches::disabled();
        off.baselines.compile(&stored(1, EIGHT)).unwrap();
        assert!(off.baselines.is_empty());
    }
}
