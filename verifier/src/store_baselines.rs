//! Baseline versions and group assignments in the store. A version is never updated or
//! deleted; every new version and every assignment is appended to the audit log in the same
//! transaction, so an acknowledged baseline change is always in the log.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use crate::store::{Store, StoreError, VerdictRecord, db, verdict_from_row};

/// The baseline records, one definition for both engines (vigil-pgstore's).
pub use vigil_pgstore::{NewBaseline, StoredBaseline};

/// The gRPC form of a stored baseline version.
pub trait BaselineProto {
    /// `with_body` includes the file (Get); List leaves it out.
    fn to_proto(&self, with_body: bool) -> vigil_proto::v1::BaselineVersion;
}

impl BaselineProto for StoredBaseline {
    fn to_proto(&self, with_body: bool) -> vigil_proto::v1::BaselineVersion {
        vigil_proto::v1::BaselineVersion {
            name: self.name.clone(),
            version: self.version,
            sha256: self.sha256.clone(),
            author: self.author.clone(),
            reason: self.reason.clone(),
            created_at_unix: self.created_at,
            toml: if with_body {
                self.body.clone()
            } else {
                String::new()
            },
            signed_by: self.signed_by.clone().unwrap_or_default(),
            rules: i32::try_from(self.rules).unwrap_or(i32::MAX),
        }
    }
}

const COLUMNS: &str = "name, version, sha256, body, author, reason, created_at, signed_by, rules";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredBaseline> {
    Ok(StoredBaseline {
        name: row.get(0)?,
        version: row.get(1)?,
        sha256: row.get(2)?,
        body: row.get(3)?,
        author: row.get(4)?,
        reason: row.get(5)?,
        created_at: row.get(6)?,
        signed_by: row.get(7)?,
        rules: row.get(8)?,
    })
}

impl Store {
    /// Stores `baseline` as the next version of its name. Uploading the same content as the
    /// latest version is idempotent and returns that version.
    pub fn put_baseline(
        &mut self,
        baseline: &NewBaseline<'_>,
    ) -> Result<StoredBaseline, StoreError> {
        if let Some(latest) = self.baseline(baseline.name, None)?
            && latest.sha256 == baseline.sha256
        {
            return Ok(latest);
        }
        let tx = self.connection.savepoint().map_err(db("begin baseline"))?;
        let version: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM baselines WHERE name = ?1",
                params![baseline.name],
                |r| r.get(0),
            )
            .map_err(db("next baseline version"))?;
        tx.execute(
            &format!(
                "INSERT INTO baselines ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ),
            params![
                baseline.name,
                version,
                baseline.sha256,
                baseline.body,
                baseline.author,
                baseline.reason,
                baseline.time,
                baseline.signed_by,
                baseline.rules
            ],
        )
        .map_err(db("store baseline"))?;
        let body_digest = vigil_audit::put_blob(&tx, baseline.body.as_bytes())?;
        Self::audit(
            &tx,
            &self.audit_key,
            &vigil_audit::AuditEntry {
                kind: "baseline.version".to_owned(),
                time: baseline.time,
                subject: baseline.name.to_owned(),
                body: serde_json::json!({
                    "version": version,
                    "sha256": baseline.sha256,
                    "file": format!("sha256:{body_digest}"),
                    "author": baseline.author,
                    "reason": baseline.reason,
                    "signed_by": baseline.signed_by,
                    "rules": baseline.rules,
                }),
            },
        )?;
        tx.commit().map_err(db("commit baseline"))?;
        self.baseline(baseline.name, Some(version))?
            .ok_or(StoreError::Sqlite {
                operation: "read back baseline",
                source: rusqlite::Error::QueryReturnedNoRows,
            })
    }

    /// Version `version` of `name`, or its latest version.
    pub fn baseline(
        &self,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<StoredBaseline>, StoreError> {
        self.connection
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM baselines WHERE name = ?1 AND (?2 IS NULL OR version = ?2)
                     ORDER BY version DESC LIMIT 1"
                ),
                params![name, version],
                from_row,
            )
            .optional()
            .map_err(db("read baseline"))
    }

    /// Every version of every baseline, by name then version.
    pub fn baselines(&self) -> Result<Vec<StoredBaseline>, StoreError> {
        let mut statement = self
            .connection
            .prepare(&format!(
                "SELECT {COLUMNS} FROM baselines ORDER BY name, version"
            ))
            .map_err(db("prepare baseline list"))?;
        let rows = statement
            .query_map([], from_row)
            .map_err(db("list baselines"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(db("read baseline row"))
    }

    /// Points `group` at baseline `name` (its latest version applies from now on).
    pub fn assign_baseline(
        &mut self,
        group: &str,
        name: &str,
        author: &str,
        reason: &str,
        time: i64,
    ) -> Result<StoredBaseline, StoreError> {
        let Some(latest) = self.baseline(name, None)? else {
            return Err(StoreError::NotFound(format!("no baseline named {name:?}")));
        };
        let tx = self
            .connection
            .savepoint()
            .map_err(db("begin assignment"))?;
        tx.execute(
            "INSERT INTO group_baselines (node_group, baseline, assigned_at, author, reason)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(node_group) DO UPDATE SET baseline = ?2, assigned_at = ?3, author = ?4, reason = ?5",
            params![group, name, time, author, reason],
        )
        .map_err(db("assign baseline"))?;
        Self::audit(
            &tx,
            &self.audit_key,
            &vigil_audit::AuditEntry {
                kind: "baseline.assigned".to_owned(),
                time,
                subject: group.to_owned(),
                body: serde_json::json!({
                    "baseline": name,
                    "version_now": latest.version,
                    "author": author,
                    "reason": reason,
                }),
            },
        )?;
        tx.commit().map_err(db("commit assignment"))?;
        Ok(latest)
    }

    /// Node group -> baseline name.
    pub fn baseline_assignments(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT node_group, baseline FROM group_baselines ORDER BY node_group")
            .map_err(db("prepare assignments"))?;
        let rows = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db("list assignments"))?;
        rows.collect::<Result<BTreeMap<_, _>, _>>()
            .map_err(db("read assignment row"))
    }

    /// The baseline version that applies to nodes of `group` now, if any.
    pub fn baseline_for_group(&self, group: &str) -> Result<Option<StoredBaseline>, StoreError> {
        let name: Option<String> = self
            .connection
            .query_row(
                "SELECT baseline FROM group_baselines WHERE node_group = ?1",
                params![group],
                |r| r.get(0),
            )
            .optional()
            .map_err(db("read assignment"))?;
        match name {
            Some(name) => self.baseline(&name, None),
            None => Ok(None),
        }
    }

    /// The latest verdict of every node that has one.
    pub fn latest_verdicts(&self) -> Result<Vec<VerdictRecord>, StoreError> {
        let mut statement = self
            .connection
            .prepare(
                "SELECT id, node_id, nonce, verified_at, verdict, result_json FROM verdicts
                 WHERE id IN (SELECT MAX(id) FROM verdicts GROUP BY node_id) ORDER BY node_id",
            )
            .map_err(db("prepare latest verdicts"))?;
        let rows = statement
            .query_map([], verdict_from_row)
            .map_err(db("query latest verdicts"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(db("read verdict row"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new<'a>(body: &'a str, sha: &'a str, time: i64) -> NewBaseline<'a> {
        NewBaseline {
            name: "hgx",
            sha256: sha,
            body,
            author: "alice",
            reason: "initial",
            signed_by: None,
            rules: 3,
            time,
        }
    }

    #[test]
    fn versions_are_immutable_numbered_and_audited() {
        let mut store = Store::in_memory().unwrap();
        let v1 = store.put_baseline(&new("a", "aa", 10)).unwrap();
        let again = store.put_baseline(&new("a", "aa", 11)).unwrap();
        assert_eq!(
            (v1.version, again.version),
            (1, 1),
            "same content: same version"
        );
        let v2 = store.put_baseline(&new("b", "bb", 12)).unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(store.baseline("hgx", Some(1)).unwrap().unwrap().body, "a");
        assert_eq!(store.baseline("hgx", None).unwrap().unwrap().body, "b");
        assert!(store.baseline_for_group("gpu").unwrap().is_none());
        assert!(matches!(
            store.assign_baseline("gpu", "nope", "a", "r", 13),
            Err(StoreError::NotFound(_))
        ));
        store
            .assign_baseline("gpu", "hgx", "alice", "rollout", 13)
            .unwrap();
        assert_eq!(store.baseline_for_group("gpu").unwrap().unwrap().version, 2);
        let kinds: Vec<String> = (0..3)
            .map(|i| {
                vigil_audit::get_entry(&store.connection, i)
                    .unwrap()
                    .unwrap()
                    .entry
                    .kind
            })
            .collect();
        assert_eq!(
            kinds,
            ["baseline.version", "baseline.version", "baseline.assigned"]
        );
    }
}
