//! Read-only SQL for the console. Kept here rather than in `store.rs` so the console reads the
//! tables without widening the store's API; every statement is a SELECT.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::WebError;

/// Fleet filter from the query string; empty strings mean "any".
#[derive(Debug, Default, Clone)]
pub struct FleetFilter {
    pub status: String,
    pub group: String,
    pub name: String,
}

/// One row of the fleet page.
#[derive(Debug, Clone, Serialize)]
pub struct FleetRow {
    pub node_id: String,
    pub group: String,
    pub status: String,
    pub last_verdict: Option<String>,
    pub last_seen: i64,
    /// When the node entered its current status (latest status change), if ever recorded.
    pub since: Option<i64>,
    pub address: Option<String>,
}

/// Counts by status and group, over the whole fleet (not the filtered page).
#[derive(Debug, Clone, Serialize)]
pub struct FleetSummary {
    pub total: i64,
    pub by_status: Vec<(String, i64)>,
    pub by_group: Vec<(String, i64)>,
}

pub fn fleet_summary(conn: &Connection) -> Result<FleetSummary, WebError> {
    let total = conn.query_row("SELECT COUNT(*) FROM nodes", [], |r| r.get(0))?;
    let count_by = |column: &str| -> Result<Vec<(String, i64)>, WebError> {
        let mut stmt = conn.prepare(&format!(
            "SELECT {column}, COUNT(*) FROM nodes GROUP BY {column} ORDER BY {column}"
        ))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    Ok(FleetSummary {
        total,
        by_status: count_by("status")?,
        by_group: count_by("node_group")?,
    })
}

const FLEET_WHERE: &str = "(?1 = '' OR n.status = ?1) AND (?2 = '' OR n.node_group = ?2)
     AND (?3 = '' OR instr(lower(n.node_id), lower(?3)) > 0)";

/// Matching nodes (ordered by group, then id) and how many match in all.
pub fn fleet(
    conn: &Connection,
    filter: &FleetFilter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<FleetRow>, u64), WebError> {
    let matching: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM nodes n WHERE {FLEET_WHERE}"),
        params![filter.status, filter.group, filter.name],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT n.node_id, n.node_group, n.status, n.last_verdict, n.last_seen, n.address, s.since
         FROM nodes n
         LEFT JOIN (SELECT node_id, new_status, MAX(time) AS since FROM status_changes
                    GROUP BY node_id, new_status) s
           ON s.node_id = n.node_id AND s.new_status = n.status
         WHERE {FLEET_WHERE}
         ORDER BY n.node_group, n.node_id LIMIT ?4 OFFSET ?5"
    ))?;
    let rows = stmt.query_map(
        params![
            filter.status,
            filter.group,
            filter.name,
            to_i64(limit),
            to_i64(offset)
        ],
        |r| {
            Ok(FleetRow {
                node_id: r.get(0)?,
                group: r.get(1)?,
                status: r.get(2)?,
                last_verdict: r.get(3)?,
                last_seen: r.get(4)?,
                address: r.get(5)?,
                since: r.get(6)?,
            })
        },
    )?;
    Ok((rows.collect::<Result<_, _>>()?, to_u64(matching)))
}

/// A node's registration facts for the node page.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    pub node_id: String,
    pub group: String,
    pub status: String,
    pub ak_trust: String,
    pub address: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub registered_at: Option<i64>,
    pub last_verdict: Option<String>,
    pub ak_name: String,
    /// The GPUs' device identities from the last passing verdict (stored JSON).
    pub gpu_identities: serde_json::Value,
}

pub fn node(conn: &Connection, node_id: &str) -> Result<Option<NodeInfo>, WebError> {
    Ok(conn
        .query_row(
            "SELECT node_id, node_group, status, ak_trust, address, first_seen, last_seen,
                    registered_at, last_verdict, ak_name, gpu_identities
             FROM nodes WHERE node_id = ?1",
            params![node_id],
            |r| {
                let ak_name: Vec<u8> = r.get(9)?;
                let gpus: String = r.get(10)?;
                Ok(NodeInfo {
                    node_id: r.get(0)?,
                    group: r.get(1)?,
                    status: r.get(2)?,
                    ak_trust: r.get(3)?,
                    address: r.get(4)?,
                    first_seen: r.get(5)?,
                    last_seen: r.get(6)?,
                    registered_at: r.get(7)?,
                    last_verdict: r.get(8)?,
                    ak_name: hex::encode(ak_name),
                    gpu_identities: serde_json::from_str(&gpus).unwrap_or(serde_json::Value::Null),
                })
            },
        )
        .optional()?)
}

/// One recorded verdict with its stored report.
#[derive(Debug, Clone)]
pub struct VerdictRow {
    pub id: i64,
    pub node_id: String,
    pub verified_at: i64,
    pub verdict: String,
    pub report: serde_json::Value,
}

fn verdict_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VerdictRow> {
    let json: String = r.get(4)?;
    Ok(VerdictRow {
        id: r.get(0)?,
        node_id: r.get(1)?,
        verified_at: r.get(2)?,
        verdict: r.get(3)?,
        report: serde_json::from_str(&json).unwrap_or(serde_json::Value::Null),
    })
}

/// A node's verdicts, newest first, and how many it has.
pub fn node_verdicts(
    conn: &Connection,
    node_id: &str,
    offset: u64,
    limit: u64,
) -> Result<(Vec<VerdictRow>, u64), WebError> {
    let total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM verdicts WHERE node_id = ?1",
        params![node_id],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(
        "SELECT id, node_id, verified_at, verdict, result_json FROM verdicts
         WHERE node_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(params![node_id, to_i64(limit), to_i64(offset)], verdict_row)?;
    Ok((rows.collect::<Result<_, _>>()?, to_u64(total)))
}

pub fn verdict(conn: &Connection, node_id: &str, id: i64) -> Result<Option<VerdictRow>, WebError> {
    Ok(conn
        .query_row(
            "SELECT id, node_id, verified_at, verdict, result_json FROM verdicts
             WHERE id = ?1 AND node_id = ?2",
            params![id, node_id],
            verdict_row,
        )
        .optional()?)
}

/// A node's status changes, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    pub seq: i64,
    pub old_status: String,
    pub new_status: String,
    pub reason: String,
    pub time: i64,
}

pub fn status_changes(
    conn: &Connection,
    node_id: &str,
    limit: u64,
) -> Result<Vec<StatusRow>, WebError> {
    let mut stmt = conn.prepare(
        "SELECT seq, old_status, new_status, reason, time FROM status_changes
         WHERE node_id = ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![node_id, to_i64(limit)], |r| {
        Ok(StatusRow {
            seq: r.get(0)?,
            old_status: r.get(1)?,
            new_status: r.get(2)?,
            reason: r.get(3)?,
            time: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One stored baseline version (without its body unless asked).
#[derive(Debug, Clone, Serialize)]
pub struct BaselineRow {
    pub name: String,
    pub version: i64,
    pub sha256: String,
    pub author: String,
    pub reason: String,
    pub created_at: i64,
    pub signed_by: Option<String>,
    pub rules: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

fn baseline_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BaselineRow> {
    Ok(BaselineRow {
        name: r.get(0)?,
        version: r.get(1)?,
        sha256: r.get(2)?,
        author: r.get(3)?,
        reason: r.get(4)?,
        created_at: r.get(5)?,
        signed_by: r.get(6)?,
        rules: r.get(7)?,
        body: r.get(8)?,
    })
}

/// Every version of every baseline (or of `name`), without bodies.
pub fn baselines(conn: &Connection, name: Option<&str>) -> Result<Vec<BaselineRow>, WebError> {
    let mut stmt = conn.prepare(
        "SELECT name, version, sha256, author, reason, created_at, signed_by, rules, NULL
         FROM baselines WHERE ?1 IS NULL OR name = ?1 ORDER BY name, version",
    )?;
    let rows = stmt.query_map(params![name], baseline_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn baseline(
    conn: &Connection,
    name: &str,
    version: i64,
) -> Result<Option<BaselineRow>, WebError> {
    Ok(conn
        .query_row(
            "SELECT name, version, sha256, author, reason, created_at, signed_by, rules, body
             FROM baselines WHERE name = ?1 AND version = ?2",
            params![name, version],
            baseline_row,
        )
        .optional()?)
}

/// Which group uses which baseline now, since when, by whom and why.
#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    pub group: String,
    pub baseline: String,
    pub assigned_at: i64,
    pub author: String,
    pub reason: String,
}

pub fn assignments(conn: &Connection) -> Result<Vec<Assignment>, WebError> {
    let mut stmt = conn.prepare(
        "SELECT node_group, baseline, assigned_at, author, reason FROM group_baselines ORDER BY node_group",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Assignment {
            group: r.get(0)?,
            baseline: r.get(1)?,
            assigned_at: r.get(2)?,
            author: r.get(3)?,
            reason: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Audit-log indices of the newest `limit` entries of `kind` (about `subject` when given),
/// oldest first. The caller decodes them from the hashed encoding, not from these columns.
pub fn audit_indices(
    conn: &Connection,
    kind: &str,
    subject: Option<&str>,
    limit: u64,
) -> Result<Vec<u64>, WebError> {
    let mut stmt = conn.prepare(
        "SELECT idx FROM audit_entry WHERE kind = ?1 AND (?2 IS NULL OR subject = ?2)
         ORDER BY idx DESC LIMIT ?3",
    )?;
    let mut out = stmt
        .query_map(params![kind, subject, to_i64(limit)], |r| {
            r.get::<_, i64>(0)
        })?
        .map(|row| row.map(to_u64))
        .collect::<Result<Vec<_>, _>>()?;
    out.reverse();
    Ok(out)
}

/// Verdicts appraised under `name@version`: (pass, fail, distinct nodes, failing nodes).
pub fn baseline_impact(
    conn: &Connection,
    name: &str,
    version: i64,
) -> Result<(i64, i64, i64, Vec<String>), WebError> {
    let reference = format!("{name}@{version}");
    let (pass, fail, nodes) = conn.query_row(
        "SELECT COALESCE(SUM(verdict = 'pass'), 0), COALESCE(SUM(verdict = 'fail'), 0),
                COUNT(DISTINCT node_id)
         FROM verdicts WHERE json_valid(result_json) AND json_extract(result_json, '$.baseline') = ?1",
        params![reference],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let mut stmt = conn.prepare(
        "SELECT DISTINCT node_id FROM verdicts
         WHERE verdict = 'fail' AND json_valid(result_json) AND json_extract(result_json, '$.baseline') = ?1
         ORDER BY node_id LIMIT 50",
    )?;
    let failing = stmt
        .query_map(params![reference], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok((pass, fail, nodes, failing))
}

/// One stored checkpoint, as written (verified by the caller).
#[derive(Debug, Clone)]
pub struct CheckpointRow {
    pub id: i64,
    pub tree_size: i64,
    pub time: i64,
    pub note: String,
}

fn checkpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CheckpointRow> {
    Ok(CheckpointRow {
        id: r.get(0)?,
        tree_size: r.get(1)?,
        time: r.get(2)?,
        note: r.get(3)?,
    })
}

/// Checkpoints, newest first, and how many there are.
pub fn checkpoints(
    conn: &Connection,
    offset: u64,
    limit: u64,
) -> Result<(Vec<CheckpointRow>, u64), WebError> {
    let total: i64 = conn.query_row("SELECT COUNT(*) FROM audit_checkpoint", [], |r| r.get(0))?;
    let mut stmt = conn.prepare(
        "SELECT id, tree_size, time, note FROM audit_checkpoint ORDER BY id DESC LIMIT ?1 OFFSET ?2",
    )?;
    let rows = stmt.query_map(params![to_i64(limit), to_i64(offset)], checkpoint_row)?;
    Ok((rows.collect::<Result<_, _>>()?, to_u64(total)))
}

/// One checkpoint by id, or the newest when `id` is `None`.
pub fn checkpoint(conn: &Connection, id: Option<i64>) -> Result<Option<CheckpointRow>, WebError> {
    Ok(conn
        .query_row(
            "SELECT id, tree_size, time, note FROM audit_checkpoint
             WHERE ?1 IS NULL OR id = ?1 ORDER BY id DESC LIMIT 1",
            params![id],
            checkpoint_row,
        )
        .optional()?)
}

/// Verdict counts per time bucket of `bucket` seconds: (bucket start, pass, fail), the newest
/// `limit` buckets that have verdicts, oldest first.
pub fn verdicts_per_bucket(
    conn: &Connection,
    bucket: i64,
    limit: u64,
) -> Result<Vec<(i64, i64, i64)>, WebError> {
    let mut stmt = conn.prepare(
        "SELECT verified_at / ?1 AS b, SUM(verdict = 'pass'), SUM(verdict = 'fail')
         FROM verdicts GROUP BY b ORDER BY b DESC LIMIT ?2",
    )?;
    let mut rows: Vec<(i64, i64, i64)> = stmt
        .query_map(params![bucket.max(1), to_i64(limit)], |r| {
            Ok((r.get::<_, i64>(0)? * bucket.max(1), r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.reverse();
    Ok(rows)
}

/// The oldest and newest verdict times, if any.
pub fn verdict_span(conn: &Connection) -> Result<Option<(i64, i64)>, WebError> {
    let (first, last): (Option<i64>, Option<i64>) = conn.query_row(
        "SELECT MIN(verified_at), MAX(verified_at) FROM verdicts",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(first.zip(last))
}

/// The checks that failed most often among the newest `scan` failed verdicts.
pub fn failing_checks(
    conn: &Connection,
    scan: u64,
    top: usize,
) -> Result<Vec<(String, i64)>, WebError> {
    let mut stmt = conn.prepare(
        "SELECT json_extract(c.value, '$.name'), COUNT(*) AS n
         FROM (SELECT result_json FROM verdicts WHERE verdict = 'fail' AND json_valid(result_json)
               ORDER BY id DESC LIMIT ?1) v, json_each(v.result_json, '$.checks') c
         WHERE json_extract(c.value, '$.passed') = 0
         GROUP BY 1 ORDER BY n DESC, 1 LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![to_i64(scan), to_i64(top as u64)], |r| {
        Ok((
            r.get::<_, Option<String>>(0)?.unwrap_or_default(),
            r.get(1)?,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
