//! The console's pages. Each handler reads through [`Verifier::with_store`] on a blocking
//! thread and builds one [`Page`]: HTML and JSON from the same data.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::html::{Html, url_part};
use super::queries::{self, FleetFilter};
use super::{Page, WebError, WebState, respond, svg};
use crate::report::format_unix_utc;
use crate::store::Store;

type Q = Query<HashMap<String, String>>;

/// Most rows one page may ask for (a whole 10,000-node fleet fits).
const MAX_PER_PAGE: u64 = 10_000;

/// Runs a read on a blocking thread with the store held only for that read.
async fn read<T: Send + 'static>(
    state: &WebState,
    f: impl FnOnce(&Store) -> Result<T, WebError> + Send + 'static,
) -> Result<T, WebError> {
    let verifier = std::sync::Arc::clone(&state.verifier);
    tokio::task::spawn_blocking(move || verifier.with_store(f))
        .await
        .map_err(|e| WebError::Internal(format!("read task: {e}")))??
}

fn time(t: i64) -> String {
    format_unix_utc(t)
}

/// A value for display: strings as they are, anything else as compact JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Provenance as `key=value` pairs (`from=event event=2 offset=147 pcr=4`).
fn provenance(value: &Value) -> String {
    match value.as_object() {
        Some(object) => object
            .iter()
            .map(|(k, v)| format!("{k}={}", shown(v)))
            .collect::<Vec<_>>()
            .join(" "),
        None => shown(value),
    }
}

/// A claim's value without its type tag (`{"type": "digest", "value": "ab.."}` shows `ab..`).
fn claim_value(value: &Value) -> String {
    match value.get("value") {
        Some(inner) if value.get("type").is_some() => shown(inner),
        _ => shown(value),
    }
}

fn number(query: &HashMap<String, String>, name: &str) -> Result<Option<u64>, WebError> {
    match query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            WebError::BadRequest(format!("{name}={v:?} is not a non-negative integer"))
        }),
    }
}

/// Page number (from 1) and page size from the query string.
struct Paging {
    page: u64,
    per_page: u64,
}

impl Paging {
    fn from(query: &HashMap<String, String>, default: u64) -> Result<Paging, WebError> {
        let page = number(query, "page")?.unwrap_or(1).max(1);
        let per_page = number(query, "per_page")?
            .unwrap_or(default)
            .clamp(1, MAX_PER_PAGE);
        Ok(Paging { page, per_page })
    }

    fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.per_page)
    }

    fn json(&self, total: u64) -> Value {
        json!({ "page": self.page, "per_page": self.per_page, "total": total })
    }

    /// "page N of M" with previous/next links keeping the other parameters.
    fn links(&self, out: &mut Html, path: &str, keep: &[(&str, &str)], total: u64) {
        let pages = total.div_ceil(self.per_page).max(1);
        let href = |page: u64| {
            let mut query: Vec<String> = keep
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| format!("{k}={}", url_part(v)))
                .collect();
            query.push(format!("page={page}"));
            if self.per_page != 0 {
                query.push(format!("per_page={}", self.per_page));
            }
            format!("{path}?{}", query.join("&"))
        };
        out.open("p", &[("class", "pager")]);
        if self.page > 1 {
            out.link(&href(self.page - 1), "← previous");
        }
        out.elem(
            "span",
            &[],
            &format!(" page {} of {pages} ({total} in all) ", self.page),
        );
        if self.page < pages {
            out.link(&href(self.page + 1), "next →");
        }
        out.close("p");
    }
}

fn node_href(id: &str) -> String {
    format!("/nodes/{}", url_part(id))
}

fn verdict_href(node: &str, id: i64) -> String {
    format!("/nodes/{}/verdicts/{id}", url_part(node))
}

// ---------------------------------------------------------------- fleet

pub(super) async fn fleet(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let result = async {
        let filter = FleetFilter {
            status: query.get("status").cloned().unwrap_or_default(),
            group: query.get("group").cloned().unwrap_or_default(),
            name: query.get("name").cloned().unwrap_or_default(),
        };
        let paging = Paging::from(&query, 100)?;
        let (offset, limit) = (paging.offset(), paging.per_page);
        let f = filter.clone();
        let (summary, (rows, total)) = read(&state, move |store| {
            let conn = store.connection();
            Ok((
                queries::fleet_summary(conn)?,
                queries::fleet(conn, &f, offset, limit)?,
            ))
        })
        .await?;
        let mut body = Html::new();
        body.open("section", &[("class", "summary")]);
        body.elem(
            "span",
            &[("class", "count")],
            &format!("{} nodes", summary.total),
        );
        for (status, count) in &summary.by_status {
            body.open(
                "a",
                &[("href", &format!("/nodes?status={}", url_part(status)))],
            )
            .badge(status)
            .text(&format!(" {count}"))
            .close("a");
        }
        body.close("section");
        body.open(
            "form",
            &[("method", "get"), ("action", "/nodes"), ("class", "filter")],
        );
        body.raw("<label>status <select name=\"status\"><option value=\"\">any</option>");
        for status in ["trusted", "untrusted", "unknown"] {
            let mut attrs = vec![("value", status)];
            if filter.status == status {
                attrs.push(("selected", "selected"));
            }
            body.elem("option", &attrs, status);
        }
        body.raw(
            "</select></label><label>group <select name=\"group\"><option value=\"\">any</option>",
        );
        for (group, count) in &summary.by_group {
            let label = format!("{group} ({count})");
            let mut attrs = vec![("value", group.as_str())];
            if &filter.group == group {
                attrs.push(("selected", "selected"));
            }
            body.elem("option", &attrs, &label);
        }
        body.raw("</select></label><label>name ");
        body.open(
            "input",
            &[
                ("type", "search"),
                ("name", "name"),
                ("value", &filter.name),
            ],
        );
        body.raw("</label><button type=\"submit\">Filter</button></form>");
        body.raw("<table class=\"fleet\">");
        body.header_row(&[
            "node",
            "group",
            "status",
            "since",
            "last verdict",
            "last seen",
            "address",
        ]);
        body.raw("<tbody>");
        for row in &rows {
            body.raw("<tr><td>");
            body.link(&node_href(&row.node_id), &row.node_id);
            body.raw("</td><td>");
            body.link(
                &format!("/nodes?group={}", url_part(&row.group)),
                &row.group,
            );
            body.raw("</td><td>");
            body.badge(&row.status);
            body.raw("</td>");
            body.td(&row.since.map(time).unwrap_or_default());
            body.raw("<td>");
            if let Some(verdict) = &row.last_verdict {
                body.badge(verdict);
            }
            body.raw("</td>");
            body.td(&time(row.last_seen));
            body.td(row.address.as_deref().unwrap_or(""));
            body.raw("</tr>");
        }
        body.raw("</tbody></table>");
        paging.links(
            &mut body,
            "/nodes",
            &[
                ("status", &filter.status),
                ("group", &filter.group),
                ("name", &filter.name),
            ],
            total,
        );
        Ok(Page {
            title: "Fleet".to_owned(),
            body,
            json: json!({
                "summary": summary,
                "filter": { "status": filter.status, "group": filter.group, "name": filter.name },
                "paging": paging.json(total),
                "nodes": rows,
            }),
        })
    }
    .await;
    respond(result, &headers, &query)
}

// ---------------------------------------------------------------- node

pub(super) async fn node(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let result = async {
        let paging = Paging::from(&query, 25)?;
        let (offset, limit) = (paging.offset(), paging.per_page);
        let node_id = id.clone();
        let (info, (verdicts, total), changes) = read(&state, move |store| {
            let conn = store.connection();
            let info = queries::node(conn, &node_id)?
                .ok_or_else(|| WebError::NotFound(format!("no node {node_id:?}")))?;
            Ok((
                info,
                queries::node_verdicts(conn, &node_id, offset, limit)?,
                queries::status_changes(conn, &node_id, 20)?,
            ))
        })
        .await?;
        let mut body = Html::new();
        body.raw("<dl class=\"facts\">");
        let facts: [(&str, String); 8] = [
            ("group", info.group.clone()),
            ("status", info.status.clone()),
            ("AK trust", info.ak_trust.clone()),
            ("AK name", info.ak_name.clone()),
            ("address", info.address.clone().unwrap_or_default()),
            (
                "registered",
                info.registered_at
                    .map(time)
                    .unwrap_or_else(|| "not registered".into()),
            ),
            ("first seen", time(info.first_seen)),
            ("last seen", time(info.last_seen)),
        ];
        for (label, value) in &facts {
            body.elem("dt", &[], label);
            body.open("dd", &[]);
            if *label == "status" {
                body.badge(value);
            } else {
                body.text(value);
            }
            body.close("dd");
        }
        body.raw("</dl>");
        body.elem("h2", &[], "GPUs");
        gpu_table(&mut body, &info.gpu_identities);
        body.elem("h2", &[], "Verdict timeline");
        body.raw("<table>");
        body.header_row(&[
            "verdict",
            "time",
            "result",
            "status",
            "baseline",
            "failed checks",
            "diff",
        ]);
        body.raw("<tbody>");
        for (i, verdict) in verdicts.iter().enumerate() {
            body.raw("<tr><td>");
            body.link(
                &verdict_href(&info.node_id, verdict.id),
                &format!("#{}", verdict.id),
            );
            body.raw("</td>");
            body.td(&time(verdict.verified_at));
            body.raw("<td>");
            body.badge(&verdict.verdict);
            body.raw("</td>");
            body.td(&shown(&verdict.report["status"]));
            body.td(&shown(&verdict.report["baseline"]));
            body.td(&failed_checks(&verdict.report).join(", "));
            body.raw("<td>");
            if let Some(older) = verdicts.get(i + 1) {
                body.link(
                    &format!(
                        "{}/diff?from={}&to={}",
                        node_href(&info.node_id),
                        older.id,
                        verdict.id
                    ),
                    "vs previous",
                );
            }
            body.raw("</td></tr>");
        }
        body.raw("</tbody></table>");
        paging.links(&mut body, &node_href(&info.node_id), &[], total);
        body.elem("h2", &[], "Status changes");
        body.raw("<table>");
        body.header_row(&["seq", "time", "from", "to", "reason"]);
        body.raw("<tbody>");
        for change in &changes {
            body.raw("<tr>");
            body.td(&change.seq.to_string());
            body.td(&time(change.time));
            body.raw("<td>");
            body.badge(&change.old_status);
            body.raw("</td><td>");
            body.badge(&change.new_status);
            body.raw("</td>");
            body.td(&change.reason);
            body.raw("</tr>");
        }
        body.raw("</tbody></table>");
        let timeline: Vec<Value> = verdicts
            .iter()
            .map(|v| {
                json!({
                    "id": v.id,
                    "verified_at": v.verified_at,
                    "verdict": v.verdict,
                    "status": v.report["status"],
                    "baseline": v.report["baseline"],
                    "failed_checks": failed_checks(&v.report),
                    "href": verdict_href(&info.node_id, v.id),
                })
            })
            .collect();
        Ok(Page {
            title: format!("Node {}", info.node_id),
            body,
            json: json!({
                "node": info,
                "verdicts": timeline,
                "paging": paging.json(total),
                "status_changes": changes,
            }),
        })
    }
    .await;
    respond(result, &headers, &query)
}

fn failed_checks(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .filter(|c| c["passed"] == false)
                .map(|c| shown(&c["name"]))
                .collect()
        })
        .unwrap_or_default()
}

/// The GPUs' identities as stored (a list of objects): one row each, every field shown.
fn gpu_table(body: &mut Html, gpus: &Value) {
    let Some(list) = gpus.as_array().filter(|l| !l.is_empty()) else {
        body.elem(
            "p",
            &[("class", "muted")],
            "No GPU identities recorded (none, or no passing verdict with GPU evidence yet).",
        );
        return;
    };
    let mut columns: Vec<String> = Vec::new();
    for gpu in list {
        if let Some(object) = gpu.as_object() {
            for key in object.keys() {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    body.raw("<table class=\"gpus\"><thead><tr>");
    for column in &columns {
        body.elem("th", &[], column);
    }
    body.raw("</tr></thead><tbody>");
    for gpu in list {
        body.raw("<tr>");
        for column in &columns {
            body.open("td", &[("class", "mono")])
                .text(&shown(&gpu[column.as_str()]))
                .close("td");
        }
        body.raw("</tr>");
    }
    body.raw("</tbody></table>");
}

// ---------------------------------------------------------------- one verdict

fn verdict_id(text: &str) -> Result<i64, WebError> {
    text.parse::<i64>()
        .map_err(|_| WebError::NotFound(format!("no verdict {text:?}")))
}

pub(super) async fn verdict(
    State(state): State<WebState>,
    Path((id, verdict)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let result = async {
        let verdict_id = verdict_id(&verdict)?;
        let node_id = id.clone();
        let row = read(&state, move |store| {
            queries::verdict(store.connection(), &node_id, verdict_id)?
                .ok_or_else(|| WebError::NotFound(format!("no verdict {verdict_id} of node {node_id:?}")))
        })
        .await?;
        let report = &row.report;
        let mut body = Html::new();
        body.raw("<dl class=\"facts\">");
        body.elem("dt", &[], "node");
        body.open("dd", &[]).link(&node_href(&row.node_id), &row.node_id).close("dd");
        body.elem("dt", &[], "verdict");
        body.open("dd", &[]).badge(&row.verdict).close("dd");
        body.elem("dt", &[], "AR4SI status");
        body.open("dd", &[]).badge(&shown(&report["status"])).close("dd");
        for (label, value) in [
            ("verified at", time(row.verified_at)),
            ("baseline", shown(&report["baseline"])),
            ("AK trust", shown(&report["ak_trust"])),
            ("nonce", shown(&report["nonce"])),
        ] {
            body.elem("dt", &[], label);
            body.open("dd", &[("class", "mono")]).text(&value).close("dd");
        }
        body.raw("</dl>");
        body.elem("h2", &[], "Checks");
        body.raw("<table>");
        body.header_row(&["check", "result", "detail"]);
        body.raw("<tbody>");
        for check in report["checks"].as_array().into_iter().flatten() {
            body.raw("<tr>");
            body.open("td", &[("class", "mono")]).text(&shown(&check["name"])).close("td");
            body.raw("<td>");
            body.badge(if check["passed"] == true { "pass" } else { "fail" });
            body.raw("</td>");
            body.td(&shown(&check["detail"]));
            body.raw("</tr>");
        }
        body.raw("</tbody></table>");
        body.elem("h2", &[], "Appraisal");
        match report["appraisal"]["results"].as_array() {
            Some(rules) => {
                body.raw("<table class=\"rules\">");
                body.header_row(&["rule", "claim", "outcome", "expected", "found", "category", "severity", "provenance"]);
                body.raw("<tbody>");
                for rule in rules {
                    body.raw("<tr>");
                    body.open("td", &[("class", "mono")]).text(&shown(&rule["rule"])).close("td");
                    body.open("td", &[("class", "mono")]).text(&shown(&rule["claim"])).close("td");
                    body.raw("<td>");
                    body.badge(&shown(&rule["outcome"]));
                    body.raw("</td>");
                    body.open("td", &[("class", "mono wrap")]).text(&shown(&rule["expected"])).close("td");
                    body.open("td", &[("class", "mono wrap")]).text(&shown(&rule["found"])).close("td");
                    body.td(&shown(&rule["category"]));
                    body.td(&shown(&rule["severity"]));
                    body.open("td", &[("class", "mono wrap")]).text(&provenance(&rule["source"])).close("td");
                    body.raw("</tr>");
                }
                body.raw("</tbody></table>");
            }
            None => {
                body.elem("p", &[("class", "muted")], "No appraisal: no baseline was applied to this verdict.");
            }
        }
        body.elem("h2", &[], "Claims");
        let claims = report["host_claims"]["claims"].as_array().cloned().unwrap_or_default();
        if claims.is_empty() {
            body.elem("p", &[("class", "muted")], "No claims recorded.");
        } else {
            body.raw("<table class=\"claims\">");
            body.header_row(&["claim", "value", "trust", "source"]);
            body.raw("<tbody>");
            for claim in &claims {
                body.raw("<tr>");
                body.open("td", &[("class", "mono")]).text(&shown(&claim["name"])).close("td");
                body.open("td", &[("class", "mono wrap")]).text(&claim_value(&claim["value"])).close("td");
                body.td(&shown(&claim["trust"]));
                body.open("td", &[("class", "mono wrap")]).text(&provenance(&claim["source"])).close("td");
                body.raw("</tr>");
            }
            body.raw("</tbody></table>");
        }
        body.elem("h2", &[], "Signed result (EAR)");
        match report["result_token"].as_str() {
            Some(token) => {
                body.elem("p", &[], "An ES256 JWT; check it offline with `vigil result verify` and the verifier's JWKS.");
                body.elem("pre", &[("class", "token")], token);
            }
            None => {
                body.elem("p", &[("class", "muted")], "This verifier did not sign results.");
            }
        }
        Ok(Page {
            title: format!("Verdict #{} of {}", row.id, row.node_id),
            body,
            json: json!({
                "id": row.id,
                "node_id": row.node_id,
                "verified_at": row.verified_at,
                "verdict": row.verdict,
                "report": row.report,
            }),
        })
    }
    .await;
    respond(result, &headers, &query)
}

// ---------------------------------------------------------------- verdict diff

/// One line of a diff: what a named thing was before and after.
fn diff_maps(
    from: &BTreeMap<String, String>,
    to: &BTreeMap<String, String>,
) -> Vec<(String, String, String, &'static str)> {
    let mut names: Vec<&String> = from.keys().chain(to.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| match (from.get(name), to.get(name)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) => Some((name.clone(), a.clone(), b.clone(), "changed")),
            (Some(a), None) => Some((name.clone(), a.clone(), String::new(), "removed")),
            (None, Some(b)) => Some((name.clone(), String::new(), b.clone(), "added")),
            (None, None) => None,
        })
        .collect()
}

fn check_map(report: &Value) -> BTreeMap<String, String> {
    report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let result = if c["passed"] == true { "pass" } else { "fail" };
            (
                shown(&c["name"]),
                format!("{result}: {}", shown(&c["detail"])),
            )
        })
        .collect()
}

fn rule_map(report: &Value) -> BTreeMap<String, String> {
    report["appraisal"]["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                format!("{} ({})", shown(&r["rule"]), shown(&r["claim"])),
                format!("{}: found {}", shown(&r["outcome"]), shown(&r["found"])),
            )
        })
        .collect()
}

fn claim_map(report: &Value) -> BTreeMap<String, String> {
    report["host_claims"]["claims"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                shown(&c["name"]),
                format!("{} ({})", claim_value(&c["value"]), shown(&c["trust"])),
            )
        })
        .collect()
}

pub(super) async fn diff(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let result = async {
        let from = number(&query, "from")?;
        let to = number(&query, "to")?;
        let node_id = id.clone();
        let (a, b) = read(&state, move |store| {
            let conn = store.connection();
            let pick = |id: Option<u64>, skip: u64| -> Result<queries::VerdictRow, WebError> {
                match id {
                    Some(id) => {
                        queries::verdict(conn, &node_id, queries::to_i64(id))?.ok_or_else(|| {
                            WebError::NotFound(format!("no verdict {id} of node {node_id:?}"))
                        })
                    }
                    None => queries::node_verdicts(conn, &node_id, skip, 1)?
                        .0
                        .pop()
                        .ok_or_else(|| {
                            WebError::NotFound(format!(
                                "node {node_id:?} has fewer than two verdicts"
                            ))
                        }),
                }
            };
            Ok((pick(from, 1)?, pick(to, 0)?))
        })
        .await?;
        let sections = [
            (
                "Checks",
                diff_maps(&check_map(&a.report), &check_map(&b.report)),
            ),
            (
                "Rule outcomes",
                diff_maps(&rule_map(&a.report), &rule_map(&b.report)),
            ),
            (
                "Claims",
                diff_maps(&claim_map(&a.report), &claim_map(&b.report)),
            ),
        ];
        let mut body = Html::new();
        body.open("p", &[]);
        body.text("From ");
        body.link(
            &verdict_href(&a.node_id, a.id),
            &format!("#{} ({})", a.id, time(a.verified_at)),
        );
        body.text(" ");
        body.badge(&a.verdict);
        body.text(" to ");
        body.link(
            &verdict_href(&b.node_id, b.id),
            &format!("#{} ({})", b.id, time(b.verified_at)),
        );
        body.text(" ");
        body.badge(&b.verdict);
        body.close("p");
        let mut json_sections = serde_json::Map::new();
        for (title, lines) in &sections {
            body.elem("h2", &[], title);
            if lines.is_empty() {
                body.elem("p", &[("class", "muted")], "No change.");
                continue;
            }
            body.raw("<table class=\"diff\">");
            body.header_row(&["name", "change", "before", "after"]);
            body.raw("<tbody>");
            for (name, before, after, change) in lines {
                body.raw("<tr>");
                body.open("td", &[("class", "mono")]).text(name).close("td");
                body.raw("<td>");
                body.badge(change);
                body.raw("</td>");
                body.open("td", &[("class", "mono wrap")])
                    .text(before)
                    .close("td");
                body.open("td", &[("class", "mono wrap")])
                    .text(after)
                    .close("td");
                body.raw("</tr>");
            }
            body.raw("</tbody></table>");
            json_sections.insert(
                title.to_lowercase().replace(' ', "_"),
                lines
                    .iter()
                    .map(|(n, x, y, c)| json!({ "name": n, "change": c, "before": x, "after": y }))
                    .collect(),
            );
        }
        Ok(Page {
            title: format!(
                "Changes of {} between verdicts #{} and #{}",
                a.node_id, a.id, b.id
            ),
            body,
            json: json!({
                "node_id": a.node_id,
                "from": { "id": a.id, "verdict": a.verdict, "verified_at": a.verified_at },
                "to": { "id": b.id, "verdict": b.verdict, "verified_at": b.verified_at },
                "changes": json_sections,
            }),
        })
    }
    .await;
    respond(result, &headers, &query)
}

// ---------------------------------------------------------------- baselines

pub(super) async fn baselines(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let result = async {
        let (versions, assignments, history) = read(&state, |store| {
            let conn = store.connection();
            let history = queries::audit_indices(conn, "baseline.assigned", None, 1000)?
                .into_iter()
                .filter_map(|index| vigil_audit::get_entry(conn, index).ok().flatten())
                .collect::<Vec<_>>();
            Ok((
                queries::baselines(conn, None)?,
                queries::assignments(conn)?,
                history,
            ))
        })
        .await?;
        let mut body = Html::new();
        body.elem("h2", &[], "Assignments");
        body.raw("<table>");
        body.header_row(&["group", "baseline", "since", "by", "reason"]);
        body.raw("<tbody>");
        for a in &assignments {
            body.raw("<tr><td>");
            body.link(&format!("/nodes?group={}", url_part(&a.group)), &a.group);
            body.raw("</td><td>");
            body.link(
                &format!("/baselines/{}", url_part(&a.baseline)),
                &a.baseline,
            );
            body.raw("</td>");
            body.td(&time(a.assigned_at));
            body.td(&a.author);
            body.td(&a.reason);
            body.raw("</tr>");
        }
        body.raw("</tbody></table>");
        body.elem("h2", &[], "Versions");
        body.raw("<table>");
        body.header_row(&[
            "baseline",
            "version",
            "created",
            "author",
            "reason",
            "rules",
            "signed by",
        ]);
        body.raw("<tbody>");
        for v in &versions {
            body.raw("<tr><td>");
            body.link(&format!("/baselines/{}", url_part(&v.name)), &v.name);
            body.raw("</td><td>");
            body.link(
                &format!("/baselines/{}/{}", url_part(&v.name), v.version),
                &v.version.to_string(),
            );
            body.raw("</td>");
            body.td(&time(v.created_at));
            body.td(&v.author);
            body.td(&v.reason);
            body.td(&v.rules.to_string());
            body.td(v.signed_by.as_deref().unwrap_or("unsigned"));
            body.raw("</tr>");
        }
        body.raw("</tbody></table>");
        body.elem("h2", &[], "Assignment history (audit log)");
        body.raw("<table>");
        body.header_row(&[
            "entry",
            "time",
            "group",
            "baseline",
            "version then",
            "by",
            "reason",
        ]);
        body.raw("<tbody>");
        for e in &history {
            let b = &e.entry.body;
            body.raw("<tr><td>");
            body.link(&format!("/audit/{}", e.index), &e.index.to_string());
            body.raw("</td>");
            body.td(&time(e.entry.time));
            body.td(&e.entry.subject);
            body.td(&shown(&b["baseline"]));
            body.td(&shown(&b["version_now"]));
            body.td(&shown(&b["author"]));
            body.td(&shown(&b["reason"]));
            body.raw("</tr>");
        }
        body.raw("</tbody></table>");
        Ok(Page {
            title: "Baselines".to_owned(),
            body,
            json: json!({
                "assignments": assignments,
                "versions": versions,
                "assignment_history": history,
            }),
        })
    }
    .await;
    respond(result, &headers, &query)
}

pub(super) async fn baseline_versions(
    State(state): State<WebState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let result = async {
        let wanted = name.clone();
        let (versions, impacts, entries) = read(&state, move |store| {
            let conn = store.connection();
            let versions = queries::baselines(conn, Some(&wanted))?;
            if versions.is_empty() {
                return Err(WebError::NotFound(format!("no baseline named {wanted:?}")));
            }
            let mut impacts = Vec::new();
            for v in &versions {
                impacts.push(queries::baseline_impact(conn, &v.name, v.version)?);
            }
            // The audit entry that recorded each version, by version number.
            let entries: BTreeMap<i64, u64> = queries::audit_indices(conn, "baseline.version", Some(&wanted), 10_000)?
                .into_iter()
                .filter_map(|index| vigil_audit::get_entry(conn, index).ok().flatten())
                .filter(|e| e.entry.subject == wanted)
                .filter_map(|e| e.entry.body["version"].as_i64().map(|v| (v, e.index)))
                .collect();
            Ok((versions, impacts, entries))
        })
        .await?;
        let mut body = Html::new();
        body.elem(
            "p",
            &[],
            "Each version with who made it and why, the audit entry that recorded it, and its impact: the verdicts appraised under it.",
        );
        body.raw("<table>");
        body.header_row(&["version", "created", "author", "reason", "audit entry", "verdicts pass", "verdicts fail", "nodes", "failing nodes", "diff"]);
        body.raw("<tbody>");
        let mut json_versions = Vec::new();
        for (i, (v, (pass, fail, nodes, failing))) in versions.iter().zip(&impacts).enumerate() {
            body.raw("<tr><td>");
            body.link(&format!("/baselines/{}/{}", url_part(&v.name), v.version), &v.version.to_string());
            body.raw("</td>");
            body.td(&time(v.created_at));
            body.td(&v.author);
            body.td(&v.reason);
            body.raw("<td>");
            if let Some(index) = entries.get(&v.version) {
                body.link(&format!("/audit/{index}"), &index.to_string());
            }
            body.raw("</td>");
            body.td(&pass.to_string());
            body.td(&fail.to_string());
            body.td(&nodes.to_string());
            body.raw("<td>");
            for (n, node) in failing.iter().enumerate() {
                if n > 0 {
                    body.text(", ");
                }
                body.link(&node_href(node), node);
            }
            body.raw("</td><td>");
            if i > 0 {
                body.link(
                    &format!("/baselines/{}/diff?from={}&to={}", url_part(&v.name), versions[i - 1].version, v.version),
                    "vs previous",
                );
            }
            body.raw("</td></tr>");
            json_versions.push(json!({
                "version": v,
                "audit_index": entries.get(&v.version),
                "impact": { "pass": pass, "fail": fail, "nodes": nodes, "failing_nodes": failing },
            }));
        }
        body.raw("</tbody></table>");
        Ok(Page {
            title: format!("Baseline {name}"),
            body,
            json: json!({ "name": name, "versions": json_versions }),
        })
    }
    .await;
    respond(result, &headers, &query)
}

pub(super) async fn baseline_version(
    State(state): State<WebState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let result = async {
        let version: i64 = version.parse().map_err(|_| {
            WebError::NotFound(format!("no version {version:?} of baseline {name:?}"))
        })?;
        let wanted = name.clone();
        let row = read(&state, move |store| {
            queries::baseline(store.connection(), &wanted, version)?.ok_or_else(|| {
                WebError::NotFound(format!("no version {version} of baseline {wanted:?}"))
            })
        })
        .await?;
        let mut body = Html::new();
        body.raw("<dl class=\"facts\">");
        for (label, value) in [
            ("created", time(row.created_at)),
            ("author", row.author.clone()),
            ("reason", row.reason.clone()),
            ("rules", row.rules.to_string()),
            ("SHA-256", row.sha256.clone()),
            (
                "signed by",
                row.signed_by.clone().unwrap_or_else(|| "unsigned".into()),
            ),
        ] {
            body.elem("dt", &[], label).elem("dd", &[], &value);
        }
        body.raw("</dl><p>");
        body.link(
            &format!("/baselines/{}", url_part(&row.name)),
            "all versions",
        );
        body.raw("</p>");
        body.elem(
            "pre",
            &[("class", "file")],
            row.body.as_deref().unwrap_or(""),
        );
        Ok(Page {
            title: format!("Baseline {} version {}", row.name, row.version),
            body,
            json: json!(row),
        })
    }
    .await;
    respond(result, &headers, &query)
}

/// A line diff (longest common subsequence; baselines are short enough, and capped).
pub(super) fn line_diff<'a>(a: &'a str, b: &'a str) -> Vec<(char, &'a str)> {
    const MAX_LINES: usize = 200_000;
    let x: Vec<&str> = a.lines().take(MAX_LINES).collect();
    let y: Vec<&str> = b.lines().take(MAX_LINES).collect();
    let (n, m) = (x.len(), y.len());
    // Large files (IMA allow-lists): lines only in one version, without the O(n·m) table.
    if n.saturating_mul(m) > 1_000_000 {
        let (in_a, in_b): (
            std::collections::HashSet<&str>,
            std::collections::HashSet<&str>,
        ) = (x.iter().copied().collect(), y.iter().copied().collect());
        let mut out: Vec<(char, &str)> = x
            .iter()
            .filter(|l| !in_b.contains(*l))
            .map(|l| ('-', *l))
            .collect();
        out.extend(y.iter().filter(|l| !in_a.contains(*l)).map(|l| ('+', *l)));
        return out;
    }
    let mut table = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if x[i] == y[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n && j < m {
        if x[i] == y[j] {
            out.push((' ', x[i]));
            i += 1;
            j += 1;
        } else if table[i + 1][j] >= table[i][j + 1] {
            out.push(('-', x[i]));
            i += 1;
        } else {
            out.push(('+', y[j]));
            j += 1;
        }
    }
    out.extend(x[i..].iter().map(|l| ('-', *l)));
    out.extend(y[j..].iter().map(|l| ('+', *l)));
    out
}

pub(super) async fn baseline_diff(
    State(state): State<WebState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let result = async {
        let from = number(&query, "from")?
            .ok_or_else(|| WebError::BadRequest("from=VERSION is required".into()))?;
        let to = number(&query, "to")?
            .ok_or_else(|| WebError::BadRequest("to=VERSION is required".into()))?;
        let wanted = name.clone();
        let (a, b) = read(&state, move |store| {
            let conn = store.connection();
            let get = |v: u64| {
                queries::baseline(conn, &wanted, queries::to_i64(v))?.ok_or_else(|| {
                    WebError::NotFound(format!("no version {v} of baseline {wanted:?}"))
                })
            };
            Ok((get(from)?, get(to)?))
        })
        .await?;
        let lines = line_diff(
            a.body.as_deref().unwrap_or(""),
            b.body.as_deref().unwrap_or(""),
        );
        let mut body = Html::new();
        body.open("p", &[]);
        body.text(&format!(
            "Version {} ({}, {}: {}) to version {} ({}, {}: {}).",
            a.version,
            time(a.created_at),
            a.author,
            a.reason,
            b.version,
            time(b.created_at),
            b.author,
            b.reason
        ));
        body.close("p");
        body.raw("<pre class=\"file diff\">");
        let mut json_lines = Vec::new();
        for (mark, line) in &lines {
            let class = match mark {
                '+' => "add",
                '-' => "del",
                _ => "same",
            };
            body.open("span", &[("class", class)])
                .text(&format!("{mark} {line}"))
                .close("span");
            body.raw("\n");
            if *mark != ' ' {
                json_lines.push(format!("{mark}{line}"));
            }
        }
        body.raw("</pre>");
        Ok(Page {
            title: format!("Baseline {name}: version {from} → {to}"),
            body,
            json: json!({ "name": name, "from": from, "to": to, "changed_lines": json_lines }),
        })
    }
    .await;
    respond(result, &headers, &query)
}

// ---------------------------------------------------------------- audit log

/// A checkpoint checked against the audit key and against the stored tree.
struct CheckedCheckpoint {
    row: queries::CheckpointRow,
    /// The verified root, or why the checkpoint does not verify.
    outcome: Result<vigil_audit::Hash, String>,
}

fn check_checkpoint(store: &Store, row: queries::CheckpointRow) -> CheckedCheckpoint {
    let conn = store.connection();
    let outcome = vigil_audit::verify_checkpoint(&row.note, &[store.audit_public_key()])
        .map_err(|e| format!("signature: {e}"))
        .and_then(|cp| {
            let stored = vigil_audit::root_hash(conn, cp.tree_size)
                .map_err(|e| format!("stored tree: {e}"))?;
            if stored == cp.root_hash {
                Ok(cp.root_hash)
            } else {
                Err(format!(
                    "the stored tree of size {} has root {}, the signed checkpoint says {}",
                    cp.tree_size,
                    hex::encode(stored),
                    hex::encode(cp.root_hash)
                ))
            }
        });
    CheckedCheckpoint { row, outcome }
}

fn outcome_json(outcome: &Result<impl AsRef<[u8]>, String>) -> Value {
    match outcome {
        Ok(root) => json!({ "verified": true, "root": hex::encode(root) }),
        Err(reason) => json!({ "verified": false, "reason": reason }),
    }
}

fn outcome_html(body: &mut Html, outcome: &Result<impl AsRef<[u8]>, String>) {
    match outcome {
        Ok(_) => {
            body.badge("verified");
        }
        Err(reason) => {
            body.badge("failed");
            body.text(" ").text(reason);
        }
    }
}

fn summary(entry: &vigil_audit::AuditEntry) -> String {
    let b = &entry.body;
    match entry.kind.as_str() {
        "verdict" => {
            let failed = failed_checks(&b["result"]);
            if failed.is_empty() {
                shown(&b["verdict"]).to_uppercase()
            } else {
                format!(
                    "{} failed: {}",
                    shown(&b["verdict"]).to_uppercase(),
                    failed.join(", ")
                )
            }
        }
        "node.registered" => format!(
            "group {} AK trust {}",
            shown(&b["group"]),
            shown(&b["ak_trust"])
        ),
        "baseline.version" => format!(
            "version {} ({} rules) by {}: {}",
            b["version"],
            b["rules"],
            shown(&b["author"]),
            shown(&b["reason"])
        ),
        "baseline.assigned" => format!(
            "→ {} (version {} now) by {}: {}",
            shown(&b["baseline"]),
            b["version_now"],
            shown(&b["author"]),
            shown(&b["reason"])
        ),
        _ => String::new(),
    }
}

pub(super) async fn audit(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let result = async {
        let paging = Paging::from(&query, 50)?;
        let cp_page = number(&query, "checkpoints_page")?.unwrap_or(1).max(1);
        let per_page = paging.per_page;
        let page = paging.page;
        let (size, entries, checkpoints, cp_total) = read(&state, move |store| {
            let conn = store.connection();
            let size = vigil_audit::tree_size(conn)?;
            // Newest first: page 1 holds the newest entries.
            let end = size.saturating_sub((page - 1).saturating_mul(per_page));
            let start = end.saturating_sub(per_page);
            let mut entries = vigil_audit::read_entries(conn, start, end - start)?;
            entries.reverse();
            let (rows, cp_total) = queries::checkpoints(conn, (cp_page - 1).saturating_mul(10), 10)?;
            let checked: Vec<CheckedCheckpoint> = rows.into_iter().map(|row| check_checkpoint(store, row)).collect();
            Ok((size, entries, checked, cp_total))
        })
        .await?;
        let mut body = Html::new();
        body.elem("p", &[], &format!("{size} entries in the Merkle log (RFC 9162), newest first. Each entry links to its inclusion proof, computed and verified by this server."));
        body.raw("<table class=\"audit\">");
        body.header_row(&["index", "time", "kind", "subject", "summary"]);
        body.raw("<tbody>");
        for e in &entries {
            body.raw("<tr><td>");
            body.link(&format!("/audit/{}", e.index), &e.index.to_string());
            body.raw("</td>");
            body.td(&time(e.entry.time));
            body.open("td", &[("class", "mono")]).text(&e.entry.kind).close("td");
            body.raw("<td>");
            if e.entry.kind.starts_with("verdict") || e.entry.kind.starts_with("node.") {
                body.link(&node_href(&e.entry.subject), &e.entry.subject);
            } else if e.entry.kind == "baseline.version" {
                body.link(&format!("/baselines/{}", url_part(&e.entry.subject)), &e.entry.subject);
            } else {
                body.text(&e.entry.subject);
            }
            body.raw("</td>");
            body.td(&summary(&e.entry));
            body.raw("</tr>");
        }
        body.raw("</tbody></table>");
        paging.links(&mut body, "/audit", &[], size);
        body.elem("h2", &[], "Signed checkpoints");
        body.raw("<table>");
        body.header_row(&["checkpoint", "time", "tree size", "signature and root", "consistency with the previous"]);
        body.raw("<tbody>");
        for (i, cp) in checkpoints.iter().enumerate() {
            body.raw("<tr>");
            body.td(&cp.row.id.to_string());
            body.td(&time(cp.row.time));
            body.td(&cp.row.tree_size.to_string());
            body.raw("<td>");
            outcome_html(&mut body, &cp.outcome);
            body.raw("</td><td>");
            if let Some(older) = checkpoints.get(i + 1) {
                body.link(&format!("/audit/consistency?from={}&to={}", older.row.id, cp.row.id), "prove");
            }
            body.raw("</td></tr>");
        }
        body.raw("</tbody></table>");
        let cp_paging = Paging { page: cp_page, per_page: 10 };
        cp_paging.links(&mut body, "/audit", &[], cp_total);
        let checkpoint_json: Vec<Value> = checkpoints
            .iter()
            .map(|cp| json!({ "id": cp.row.id, "time": cp.row.time, "tree_size": cp.row.tree_size, "note": cp.row.note, "check": outcome_json(&cp.outcome) }))
            .collect();
        Ok(Page {
            title: "Audit log".to_owned(),
            body,
            json: json!({
                "tree_size": size,
                "paging": paging.json(size),
                "entries": entries,
                "checkpoints": checkpoint_json,
                "checkpoints_total": cp_total,
            }),
        })
    }
    .await;
    respond(result, &headers, &query)
}

pub(super) async fn audit_entry(
    State(state): State<WebState>,
    Path(index): Path<String>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let result = async {
        let index: u64 = index
            .parse()
            .map_err(|_| WebError::NotFound(format!("no audit entry {index:?}")))?;
        let checkpoint_id = number(&query, "checkpoint")?.map(queries::to_i64);
        let (entry, proof) = read(&state, move |store| {
            let conn = store.connection();
            let entry = vigil_audit::get_entry(conn, index)?
                .ok_or_else(|| WebError::NotFound(format!("no audit entry {index}")))?;
            let proof = inclusion(store, index, checkpoint_id)?;
            Ok((entry, proof))
        })
        .await?;
        let mut body = Html::new();
        body.raw("<dl class=\"facts\">");
        body.elem("dt", &[], "kind").elem("dd", &[("class", "mono")], &entry.entry.kind);
        body.elem("dt", &[], "time").elem("dd", &[], &time(entry.entry.time));
        body.elem("dt", &[], "subject").elem("dd", &[], &entry.entry.subject);
        body.elem("dt", &[], "leaf hash").elem("dd", &[("class", "mono")], &hex::encode(entry.leaf_hash));
        body.raw("</dl>");
        if entry.entry.kind == "verdict"
            && let Some(id) = entry.entry.body["verdict_id"].as_i64()
        {
            body.open("p", &[]);
            body.link(&verdict_href(&entry.entry.subject, id), &format!("verdict #{id} of {}", entry.entry.subject));
            body.close("p");
        }
        body.elem("h2", &[], "Inclusion proof");
        match &proof {
            Inclusion::NoCheckpoint => {
                body.elem("p", &[("class", "muted")], "No signed checkpoint covers this entry yet.");
            }
            Inclusion::Checked { checkpoint, tree_size, path, outcome } => {
                body.open("p", &[]);
                outcome_html(&mut body, outcome);
                body.text(&format!(" entry {index} in checkpoint {checkpoint} (tree size {tree_size}), {} hashes:", path.len()));
                body.close("p");
                body.elem("pre", &[("class", "proof")], &path.join("\n"));
            }
        }
        body.elem("h2", &[], "Entry body");
        let pretty = serde_json::to_string_pretty(&entry.entry.body).unwrap_or_default();
        body.elem("pre", &[("class", "file")], &pretty);
        let proof_json = match &proof {
            Inclusion::NoCheckpoint => Value::Null,
            Inclusion::Checked { checkpoint, tree_size, path, outcome } => json!({
                "checkpoint": checkpoint, "tree_size": tree_size, "path": path, "check": outcome_json(outcome),
            }),
        };
        Ok(Page {
            title: format!("Audit entry {index}"),
            body,
            json: json!({ "entry": entry, "inclusion": proof_json }),
        })
    }
    .await;
    respond(result, &headers, &query)
}

enum Inclusion {
    NoCheckpoint,
    Checked {
        checkpoint: i64,
        tree_size: u64,
        path: Vec<String>,
        outcome: Result<vigil_audit::Hash, String>,
    },
}

/// The inclusion proof of `index` in a checkpoint (the newest covering it, or the one asked
/// for), computed from the stored tree and verified against the checkpoint's signed root.
fn inclusion(store: &Store, index: u64, checkpoint_id: Option<i64>) -> Result<Inclusion, WebError> {
    let conn = store.connection();
    let row = match checkpoint_id {
        Some(id) => Some(
            queries::checkpoint(conn, Some(id))?
                .ok_or_else(|| WebError::NotFound(format!("no checkpoint {id}")))?,
        ),
        None => queries::checkpoint(conn, None)?,
    };
    let Some(row) = row.filter(|r| queries::to_u64(r.tree_size) > index) else {
        return Ok(Inclusion::NoCheckpoint);
    };
    let checkpoint = row.id;
    let tree_size = queries::to_u64(row.tree_size);
    let checked = check_checkpoint(store, row);
    let (path, outcome) = match vigil_audit::inclusion_proof(conn, index, tree_size) {
        Ok(proof) => {
            let path = proof.path.iter().map(hex::encode).collect();
            let outcome = checked.outcome.and_then(|root| {
                proof
                    .verify(&root)
                    .map(|()| root)
                    .map_err(|e| format!("proof: {e}"))
            });
            (path, outcome)
        }
        Err(e) => (Vec::new(), Err(format!("cannot compute the proof: {e}"))),
    };
    Ok(Inclusion::Checked {
        checkpoint,
        tree_size,
        path,
        outcome,
    })
}

pub(super) async fn consistency(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let result = async {
        let from = number(&query, "from")?.ok_or_else(|| WebError::BadRequest("from=CHECKPOINT is required".into()))?;
        let to = number(&query, "to")?.ok_or_else(|| WebError::BadRequest("to=CHECKPOINT is required".into()))?;
        let (a, b, path, outcome) = read(&state, move |store| {
            let conn = store.connection();
            let get = |id: u64| {
                queries::checkpoint(conn, Some(queries::to_i64(id)))?
                    .ok_or_else(|| WebError::NotFound(format!("no checkpoint {id}")))
            };
            let (a, b) = (check_checkpoint(store, get(from)?), check_checkpoint(store, get(to)?));
            let (first, second) = (queries::to_u64(a.row.tree_size), queries::to_u64(b.row.tree_size));
            let (path, outcome) = match vigil_audit::consistency_proof(conn, first, second) {
                Ok(proof) => {
                    let path: Vec<String> = proof.path.iter().map(hex::encode).collect();
                    let outcome = match (&a.outcome, &b.outcome) {
                        (Ok(r1), Ok(r2)) => proof.verify(r1, r2).map(|()| *r2).map_err(|e| format!("proof: {e}")),
                        (Err(e), _) => Err(format!("checkpoint {from}: {e}")),
                        (_, Err(e)) => Err(format!("checkpoint {to}: {e}")),
                    };
                    (path, outcome)
                }
                Err(e) => (Vec::new(), Err(format!("cannot compute the proof: {e}"))),
            };
            Ok((a, b, path, outcome))
        })
        .await?;
        let mut body = Html::new();
        body.open("p", &[]);
        outcome_html(&mut body, &outcome);
        body.text(&format!(
            " the tree of checkpoint {} (size {}) is a prefix of the tree of checkpoint {} (size {}); {} hashes:",
            a.row.id, a.row.tree_size, b.row.id, b.row.tree_size, path.len()
        ));
        body.close("p");
        body.elem("pre", &[("class", "proof")], &path.join("\n"));
        for cp in [&a, &b] {
            body.elem("h2", &[], &format!("Checkpoint {}", cp.row.id));
            body.open("p", &[]);
            outcome_html(&mut body, &cp.outcome);
            body.close("p");
            body.elem("pre", &[("class", "file")], &cp.row.note);
        }
        Ok(Page {
            title: format!("Consistency of checkpoints {from} → {to}"),
            body,
            json: json!({
                "from": { "id": a.row.id, "tree_size": a.row.tree_size, "check": outcome_json(&a.outcome) },
                "to": { "id": b.row.id, "tree_size": b.row.tree_size, "check": outcome_json(&b.outcome) },
                "path": path,
                "check": outcome_json(&outcome),
            }),
        })
    }
    .await;
    respond(result, &headers, &query)
}

// ---------------------------------------------------------------- charts

pub(super) async fn charts(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let result = async {
        let (bucket, buckets, failing) = read(&state, |store| {
            let conn = store.connection();
            // Buckets fine enough that a short history is not one wide bar.
            let bucket = match queries::verdict_span(conn)? {
                Some((first, last)) if last - first <= 3 * 3600 => 60,
                Some((first, last)) if last - first <= 3 * 86_400 => 3600,
                _ => 86_400,
            };
            Ok((bucket, queries::verdicts_per_bucket(conn, bucket, 48)?, queries::failing_checks(conn, 5000, 10)?))
        })
        .await?;
        let (unit, label_chars) = match bucket {
            60 => ("minute", 16),
            3600 => ("hour", 13),
            _ => ("day", 10),
        };
        let mut body = Html::new();
        body.elem("h2", &[], &format!("Verdicts per {unit} (UTC), by result"));
        let bars: Vec<(String, i64, i64)> = buckets
            .iter()
            .map(|(start, pass, fail)| (format_unix_utc(*start).chars().take(label_chars).collect(), *pass, *fail))
            .collect();
        svg::stacked_bars(&mut body, &bars);
        body.elem("h2", &[], "Most frequent failing checks (newest 5,000 failed verdicts)");
        svg::horizontal_bars(&mut body, &failing);
        Ok(Page {
            title: "Charts".to_owned(),
            body,
            json: json!({
                "bucket_seconds": bucket,
                "verdicts": bars.iter().map(|(d, p, f)| json!({ "from": d, "pass": p, "fail": f })).collect::<Vec<_>>(),
                "failing_checks": failing.iter().map(|(c, n)| json!({ "check": c, "count": n })).collect::<Vec<_>>(),
            }),
        })
    }
    .await;
    respond(result, &headers, &query)
}
