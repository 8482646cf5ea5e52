//! Each statement the store runs outside the log-appending writes, written once over
//! [`GenericClient`] so that [`crate::PgStore`] (its own connection, autocommit) and
//! [`crate::PgTx`] (inside a unit of work) run the same SQL.
//!
//! Text is ordered `COLLATE "C"` (bytewise), as SQLite's default BINARY collation does, so
//! listings come out in the same order whatever locale the database was created with.

use std::collections::BTreeMap;

use postgres::types::FromSql;
use postgres::{GenericClient, Row};

use crate::cache::Conn;
use crate::{
    BASELINE_COLUMNS, NODE_COLUMNS, NodeRecord, PgStoreError, StatusChange, StoredBaseline,
    VerdictRecord, db,
};

/// Column `idx` of `row`; a type mismatch or unexpected NULL is an error, not a panic.
pub(crate) fn get<'a, T: FromSql<'a>>(
    row: &'a Row,
    idx: usize,
    what: &'static str,
) -> Result<T, PgStoreError> {
    row.try_get(idx).map_err(db(what))
}

fn node_from_row(row: &Row) -> Result<NodeRecord, PgStoreError> {
    const W: &str = "read node row";
    Ok(NodeRecord {
        node_id: get(row, 0, W)?,
        ak_public: get(row, 1, W)?,
        ak_name: get(row, 2, W)?,
        ak_trust: get(row, 3, W)?,
        address: get(row, 4, W)?,
        first_seen: get(row, 5, W)?,
        last_seen: get(row, 6, W)?,
        last_verdict: get(row, 7, W)?,
        ek_public: get(row, 8, W)?,
        ek_certificate: get(row, 9, W)?,
        group: get(row, 10, W)?,
        registered_at: get(row, 11, W)?,
        status: get(row, 12, W)?,
    })
}

const VERDICT_COLUMNS: &str = "id, node_id, nonce, verified_at, verdict, result_json";

fn verdict_from_row(row: &Row) -> Result<VerdictRecord, PgStoreError> {
    const W: &str = "read verdict row";
    Ok(VerdictRecord {
        id: get(row, 0, W)?,
        node_id: get(row, 1, W)?,
        nonce: get(row, 2, W)?,
        verified_at: get(row, 3, W)?,
        verdict: get(row, 4, W)?,
        result_json: get(row, 5, W)?,
    })
}

pub(crate) fn baseline_from_row(row: &Row) -> Result<StoredBaseline, PgStoreError> {
    const W: &str = "read baseline row";
    Ok(StoredBaseline {
        name: get(row, 0, W)?,
        version: get(row, 1, W)?,
        sha256: get(row, 2, W)?,
        body: get(row, 3, W)?,
        author: get(row, 4, W)?,
        reason: get(row, 5, W)?,
        created_at: get(row, 6, W)?,
        signed_by: get(row, 7, W)?,
        rules: get(row, 8, W)?,
    })
}

pub(crate) fn node(
    c: &mut Conn<'_, impl GenericClient>,
    node_id: &str,
) -> Result<Option<NodeRecord>, PgStoreError> {
    c.query_opt(
        &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE node_id = $1"),
        &[&node_id],
    )
    .map_err(db("look up node"))?
    .map(|row| node_from_row(&row))
    .transpose()
}

pub(crate) fn nodes(c: &mut Conn<'_, impl GenericClient>) -> Result<Vec<NodeRecord>, PgStoreError> {
    c.query(
        &format!("SELECT {NODE_COLUMNS} FROM nodes ORDER BY node_id COLLATE \"C\""),
        &[],
    )
    .map_err(db("list nodes"))?
    .iter()
    .map(node_from_row)
    .collect()
}

pub(crate) fn status_changes(
    c: &mut Conn<'_, impl GenericClient>,
    from: i64,
    limit: i64,
) -> Result<Vec<StatusChange>, PgStoreError> {
    const W: &str = "read status change row";
    c.query(
        "SELECT seq, node_id, old_status, new_status, reason, time, result_json
         FROM status_changes WHERE seq >= $1 ORDER BY seq LIMIT $2",
        &[&from, &limit],
    )
    .map_err(db("read status changes"))?
    .iter()
    .map(|r| {
        Ok(StatusChange {
            seq: get(r, 0, W)?,
            node_id: get(r, 1, W)?,
            old_status: get(r, 2, W)?,
            new_status: get(r, 3, W)?,
            reason: get(r, 4, W)?,
            time: get(r, 5, W)?,
            result_json: get(r, 6, W)?,
        })
    })
    .collect()
}

pub(crate) fn latest_status_seq(c: &mut Conn<'_, impl GenericClient>) -> Result<i64, PgStoreError> {
    let row = c
        .query_one("SELECT COALESCE(MAX(seq), 0) FROM status_changes", &[])
        .map_err(db("read latest status change"))?;
    get(&row, 0, "read latest status change")
}

pub(crate) fn verdicts(
    c: &mut Conn<'_, impl GenericClient>,
    node_id: Option<&str>,
) -> Result<Vec<VerdictRecord>, PgStoreError> {
    c.query(
        &format!(
            "SELECT {VERDICT_COLUMNS} FROM verdicts
             WHERE $1::TEXT IS NULL OR node_id = $1 ORDER BY id"
        ),
        &[&node_id],
    )
    .map_err(db("query verdicts"))?
    .iter()
    .map(verdict_from_row)
    .collect()
}

/// The SQLite store's `latest_verdicts`, statement for statement (ordered bytewise).
pub(crate) fn latest_verdicts(
    c: &mut Conn<'_, impl GenericClient>,
) -> Result<Vec<VerdictRecord>, PgStoreError> {
    c.query(
        &format!(
            "SELECT {VERDICT_COLUMNS} FROM verdicts
             WHERE id IN (SELECT MAX(id) FROM verdicts GROUP BY node_id)
             ORDER BY node_id COLLATE \"C\""
        ),
        &[],
    )
    .map_err(db("query latest verdicts"))?
    .iter()
    .map(verdict_from_row)
    .collect()
}

pub(crate) fn recent_verdicts(
    c: &mut Conn<'_, impl GenericClient>,
    node_id: Option<&str>,
    limit: i64,
) -> Result<Vec<VerdictRecord>, PgStoreError> {
    // PostgreSQL refuses a negative LIMIT where SQLite reads it as "no limit": refuse it
    // here, the same on both, rather than answer with everything.
    if limit < 0 {
        return Err(PgStoreError::Invalid(format!(
            "recent_verdicts needs a limit of 0 or more (got {limit})"
        )));
    }
    c.query(
        &format!(
            "SELECT {VERDICT_COLUMNS} FROM verdicts
             WHERE $1::TEXT IS NULL OR node_id = $1 ORDER BY id DESC LIMIT $2"
        ),
        &[&node_id, &limit],
    )
    .map_err(db("query recent verdicts"))?
    .iter()
    .map(verdict_from_row)
    .collect()
}

pub(crate) fn verdict_count(c: &mut Conn<'_, impl GenericClient>) -> Result<i64, PgStoreError> {
    let row = c
        .query_one("SELECT COUNT(*) FROM verdicts", &[])
        .map_err(db("count verdicts"))?;
    get(&row, 0, "count verdicts")
}

pub(crate) fn ima_state_json(
    c: &mut Conn<'_, impl GenericClient>,
    node_id: &str,
) -> Result<Option<(String, String)>, PgStoreError> {
    c.query_opt(
        "SELECT baseline, state_json FROM ima_state WHERE node_id = $1",
        &[&node_id],
    )
    .map_err(db("read IMA state"))?
    .map(|r| Ok((get(&r, 0, "read IMA state")?, get(&r, 1, "read IMA state")?)))
    .transpose()
}

pub(crate) fn put_ima_state_json(
    c: &mut Conn<'_, impl GenericClient>,
    node_id: &str,
    baseline: &str,
    state_json: &str,
    now: i64,
) -> Result<(), PgStoreError> {
    c.execute(
        "INSERT INTO ima_state (node_id, baseline, state_json, updated_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (node_id) DO UPDATE SET baseline = EXCLUDED.baseline,
            state_json = EXCLUDED.state_json, updated_at = EXCLUDED.updated_at",
        &[&node_id, &baseline, &state_json, &now],
    )
    .map_err(db("record IMA state"))?;
    Ok(())
}

pub(crate) fn delete_ima_state(
    c: &mut Conn<'_, impl GenericClient>,
    node_id: &str,
) -> Result<(), PgStoreError> {
    c.execute("DELETE FROM ima_state WHERE node_id = $1", &[&node_id])
        .map_err(db("delete IMA state"))?;
    Ok(())
}

pub(crate) fn set_gpu_identities(
    c: &mut Conn<'_, impl GenericClient>,
    node_id: &str,
    identities: &str,
) -> Result<(), PgStoreError> {
    c.execute(
        "UPDATE nodes SET gpu_identities = $2 WHERE node_id = $1",
        &[&node_id, &identities],
    )
    .map_err(db("record GPU identities"))?;
    Ok(())
}

pub(crate) fn gpu_identities(
    c: &mut Conn<'_, impl GenericClient>,
    node_id: &str,
) -> Result<String, PgStoreError> {
    match c
        .query_opt(
            "SELECT gpu_identities FROM nodes WHERE node_id = $1",
            &[&node_id],
        )
        .map_err(db("read GPU identities"))?
    {
        Some(row) => get(&row, 0, "read GPU identities"),
        None => Ok("[]".to_owned()),
    }
}

pub(crate) fn prune_nonces(
    c: &mut Conn<'_, impl GenericClient>,
    cutoff: i64,
) -> Result<u64, PgStoreError> {
    c.execute("DELETE FROM nonces WHERE expires_at < $1", &[&cutoff])
        .map_err(db("prune nonces"))
}

pub(crate) fn baseline(
    c: &mut Conn<'_, impl GenericClient>,
    name: &str,
    version: Option<i64>,
) -> Result<Option<StoredBaseline>, PgStoreError> {
    c.query_opt(
        &format!(
            "SELECT {BASELINE_COLUMNS} FROM baselines
             WHERE name = $1 AND ($2::BIGINT IS NULL OR version = $2)
             ORDER BY version DESC LIMIT 1"
        ),
        &[&name, &version],
    )
    .map_err(db("read baseline"))?
    .map(|r| baseline_from_row(&r))
    .transpose()
}

pub(crate) fn baselines(
    c: &mut Conn<'_, impl GenericClient>,
) -> Result<Vec<StoredBaseline>, PgStoreError> {
    c.query(
        &format!("SELECT {BASELINE_COLUMNS} FROM baselines ORDER BY name COLLATE \"C\", version"),
        &[],
    )
    .map_err(db("list baselines"))?
    .iter()
    .map(baseline_from_row)
    .collect()
}

pub(crate) fn baseline_assignments(
    c: &mut Conn<'_, impl GenericClient>,
) -> Result<BTreeMap<String, String>, PgStoreError> {
    c.query("SELECT node_group, baseline FROM group_baselines", &[])
        .map_err(db("list assignments"))?
        .iter()
        .map(|r| {
            Ok((
                get(r, 0, "list assignments")?,
                get(r, 1, "list assignments")?,
            ))
        })
        .collect()
}

pub(crate) fn baseline_for_group(
    c: &mut Conn<'_, impl GenericClient>,
    group: &str,
) -> Result<Option<StoredBaseline>, PgStoreError> {
    let name: Option<String> = match c
        .query_opt(
            "SELECT baseline FROM group_baselines WHERE node_group = $1",
            &[&group],
        )
        .map_err(db("read assignment"))?
    {
        Some(row) => Some(get(&row, 0, "read assignment")?),
        None => None,
    };
    match name {
        Some(name) => baseline(c, &name, None),
        None => Ok(None),
    }
}
