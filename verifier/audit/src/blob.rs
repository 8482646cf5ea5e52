//! Content-addressed evidence storage. Entries reference blobs from their
//! body as `"sha256:<hex>"`; the blob itself is not in the Merkle tree, its
//! digest is, so evidence can be pruned without breaking the log.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::AuditError;
use crate::merkle::sha256;

/// Largest blob accepted (evidence bundles are well below this).
pub const MAX_BLOB_BYTES: usize = 64 << 20;

/// Is `text` a SHA-256 digest in lowercase hex?
pub fn is_digest(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The digest [`put_blob`] stores `bytes` under (SHA-256, lowercase hex), for entry bodies
/// made before the blob is stored.
pub fn blob_digest(bytes: &[u8]) -> String {
    hex::encode(sha256(bytes))
}

/// Stores `bytes` (once; identical bytes are deduplicated) and returns their
/// SHA-256 digest in lowercase hex.
pub fn put_blob(conn: &Connection, bytes: &[u8]) -> Result<String, AuditError> {
    if bytes.len() > MAX_BLOB_BYTES {
        return Err(AuditError::BlobTooLarge {
            len: bytes.len(),
            max: MAX_BLOB_BYTES,
        });
    }
    let digest = blob_digest(bytes);
    conn.prepare_cached("INSERT OR IGNORE INTO audit_blob (digest, data) VALUES (?1, ?2)")?
        .execute(params![digest, bytes])?;
    Ok(digest)
}

/// Fetches a blob by digest, checking that its bytes still hash to it.
pub fn get_blob(conn: &Connection, digest: &str) -> Result<Option<Vec<u8>>, AuditError> {
    if !is_digest(digest) {
        return Err(AuditError::BadDigest(digest.chars().take(80).collect()));
    }
    let data: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM audit_blob WHERE digest = ?1")?
        .query_row([digest], |r| r.get(0))
        .optional()?;
    match data {
        Some(bytes) if hex::encode(sha256(&bytes)) != digest => Err(AuditError::BlobCorrupt {
            digest: digest.to_owned(),
        }),
        other => Ok(other),
    }
}

/// Deletes the blob `digest` (evidence retention). The entries that reference it are not
/// touched: they keep the digest, and the log still verifies. Returns whether it was stored.
pub fn delete_blob(conn: &Connection, digest: &str) -> Result<bool, AuditError> {
    if !is_digest(digest) {
        return Err(AuditError::BadDigest(digest.chars().take(80).collect()));
    }
    let deleted = conn
        .prepare_cached("DELETE FROM audit_blob WHERE digest = ?1")?
        .execute([digest])?;
    Ok(deleted > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        crate::migrate(&conn).unwrap();
        conn
    }

    #[test]
    fn a_deleted_blob_is_gone_and_others_stay() {
        let conn = conn();
        let a = put_blob(&conn, b"evidence a").unwrap();
        let b = put_blob(&conn, b"evidence b").unwrap();
        assert!(delete_blob(&conn, &a).unwrap());
        assert_eq!(get_blob(&conn, &a).unwrap(), None);
        assert_eq!(
            get_blob(&conn, &b).unwrap().as_deref(),
            Some(&b"evidence b"[..])
        );
        // Deleting it again deletes nothing; storing it again brings it back.
        assert!(!delete_blob(&conn, &a).unwrap());
        assert_eq!(put_blob(&conn, b"evidence a").unwrap(), a);
        assert!(get_blob(&conn, &a).unwrap().is_some());
    }

    #[test]
    fn delete_refuses_what_is_not_a_digest() {
        let conn = conn();
        assert!(matches!(
            delete_blob(&conn, "sha256:abc"),
            Err(AuditError::BadDigest(_))
        ));
    }
}
