//! Freshness: random, single-use, expiring nonces. A replayed, foreign, expired or unknown
//! nonce fails here, in core code, never in policy.

use ring::rand::{SecureRandom, SystemRandom};
use vigil_proto::binding::NONCE_LEN;

use crate::store::StoreError;
use crate::store_api::StoreOps;

/// How long a nonce stays valid unless configured otherwise.
pub const DEFAULT_NONCE_TTL_SECS: i64 = 60;

/// Why a nonce was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    #[error("nonce was never issued by this verifier")]
    Unknown,
    #[error("nonce was issued for node {issued_for:?}, not {presented_by:?}")]
    Foreign {
        issued_for: String,
        presented_by: String,
    },
    #[error("nonce expired at {expires_at} (unix), presented at {now}")]
    Expired { expires_at: i64, now: i64 },
    #[error("nonce was already used at {used_at} (unix): replay")]
    Replayed { used_at: i64 },
    #[error("nonce must be {NONCE_LEN} bytes, got {0}")]
    WrongLength(usize),
    #[error("nonce store: {0}")]
    Store(String),
}

impl From<StoreError> for NonceError {
    fn from(error: StoreError) -> Self {
        NonceError::Store(error.to_string())
    }
}

/// Makes a fresh nonce for `node_id`, valid for `ttl_secs` from `now`.
pub fn issue(
    store: &mut dyn StoreOps,
    node_id: &str,
    now: i64,
    ttl_secs: i64,
) -> Result<[u8; NONCE_LEN], NonceError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| NonceError::Store("system random generator failed".into()))?;
    store.insert_nonce(&nonce, node_id, now, now.saturating_add(ttl_secs))?;
    Ok(nonce)
}

/// How long a used or expired nonce is remembered, so a replay inside that window is
/// reported as a replay rather than as an unknown nonce.
pub const NONCE_MEMORY_SECS: i64 = 86_400;

/// Keeps the table small: forgets nonces expired for longer than [`NONCE_MEMORY_SECS`].
pub fn prune(store: &mut dyn StoreOps, now: i64) -> Result<usize, NonceError> {
    Ok(store.prune_nonces(now.saturating_sub(NONCE_MEMORY_SECS))?)
}

/// Uses up `nonce` for `node_id` at `now`, or says exactly why it cannot be used.
pub fn consume(
    store: &mut dyn StoreOps,
    nonce: &[u8],
    node_id: &str,
    now: i64,
) -> Result<(), NonceError> {
    if nonce.len() != NONCE_LEN {
        return Err(NonceError::WrongLength(nonce.len()));
    }
    let (consumed, before) = store.consume_nonce(nonce, node_id, now)?;
    if consumed {
        return Ok(());
    }
    let Some(record) = before else {
        return Err(NonceError::Unknown);
    };
    if record.node_id != node_id {
        return Err(NonceError::Foreign {
            issued_for: record.node_id,
            presented_by: node_id.to_owned(),
        });
    }
    if let Some(used_at) = record.used_at {
        return Err(NonceError::Replayed { used_at });
    }
    Err(NonceError::Expired {
        expires_at: record.expires_at,
        now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn fresh_nonce_passes_once_then_is_a_replay() {
        let mut store = Store::in_memory().unwrap();
        let nonce = issue(&mut store, "n", 1000, 60).unwrap();
        assert_eq!(consume(&mut store, &nonce, "n", 1001), Ok(()));
        assert_eq!(
            consume(&mut store, &nonce, "n", 1002),
            Err(NonceError::Replayed { used_at: 1001 })
        );
    }

    #[test]
    fn each_refusal_names_its_reason() {
        let mut store = Store::in_memory().unwrap();
        let a = issue(&mut store, "a", 1000, 60).unwrap();
        let b = issue(&mut store, "a", 1000, 60).unwrap();
        assert_ne!(a, b, "nonces must be random");
        assert_eq!(
            consume(&mut store, &a, "b", 1001),
            Err(NonceError::Foreign {
                issued_for: "a".into(),
                presented_by: "b".into()
            })
        );
        assert_eq!(
            consume(&mut store, &b, "a", 1060),
            Err(NonceError::Expired {
                expires_at: 1060,
                now: 1060
            })
        );
        assert_eq!(
            consume(&mut store, &[7u8; 32], "a", 1001),
            Err(NonceError::Unknown)
        );
        assert_eq!(
            consume(&mut store, &[7u8; 5], "a", 1001),
            Err(NonceError::WrongLength(5))
        );
    }
}
