//! `vigil nodes`, `vigil node status|remove` and `vigil history`: read the local database
//! (`--db`), or ask a running verifier (`--verifier URL`, gRPC `Verifier.ListNodes`,
//! `Verifier.History`, `Registrar.Deregister`) with a role's client certificate. Local and
//! remote print the same way.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use vigil_proto::v1;
use vigil_proto::v1::registrar_client::RegistrarClient;
use vigil_proto::v1::verifier_client::VerifierClient;
use vigil_tls::Role;
use vigil_verifier::report::{Verdict, format_unix_utc};
use vigil_verifier::service::{MAX_HISTORY_LIMIT, node_infos, summarize_result};

use crate::{AnyError, StoreArgs, open_existing_store, open_verifier, runtime};

/// A running verifier and the client certificate to present to it.
#[derive(Args)]
pub struct Remote {
    /// Ask this running verifier (`vigil serve`) instead of reading the local database.
    #[arg(long, env = "VIGIL_VERIFIER", global = true)]
    verifier: Option<String>,
    /// Certificate directory (`vigil dev-certs DIR` layout): mutual TLS to --verifier.
    #[arg(long, env = "VIGIL_TLS_DIR", global = true)]
    tls_dir: Option<PathBuf>,
    /// Role whose client certificate to present to --verifier (default: auditor to read,
    /// admin for `node remove`).
    #[arg(long = "as", env = "VIGIL_ROLE", value_name = "ROLE", global = true)]
    as_role: Option<String>,
}

/// The local database, or a running verifier (which wins when both are given).
#[derive(Args)]
pub struct Target {
    /// The embedded SQLite database (not used with --verifier).
    #[arg(long, env = "VIGIL_DB", default_value = "vigil.db", global = true)]
    db: PathBuf,
    #[command(flatten)]
    remote: Remote,
}

/// The client certificate for `role_name` (or `default_role`) from `tls_dir`; none without a
/// directory (plaintext, for a verifier in `--dev` mode).
pub fn client_tls(
    tls_dir: Option<&Path>,
    role_name: Option<&str>,
    default_role: Role,
) -> Result<Option<vigil_verifier::connect::ClientTls>, AnyError> {
    let role = match role_name {
        Some(name) => Role::from_name(name).ok_or_else(|| {
            format!("--as {name:?}: roles are attester, orchestrator, admin, auditor, verifier")
        })?,
        None => default_role,
    };
    Ok(tls_dir.map(|dir| vigil_verifier::connect::ClientTls::new(dir, role)))
}

impl Remote {
    async fn channel(
        &self,
        url: &str,
        default_role: Role,
    ) -> Result<tonic::transport::Channel, AnyError> {
        let tls = client_tls(
            self.tls_dir.as_deref(),
            self.as_role.as_deref(),
            default_role,
        )?;
        Ok(vigil_verifier::connect::channel(url, tls.as_ref())
            .await
            .map_err(|e| format!("the verifier: {e}"))?)
    }
}

/// "verifier refused METHOD: code: message", for a status from the verifier.
fn refused(method: &str, status: &tonic::Status) -> String {
    format!(
        "verifier refused {method}: {}: {}",
        status.code(),
        status.message()
    )
}

#[derive(Args)]
pub struct NodesArgs {
    #[command(subcommand)]
    command: Option<NodesCommand>,
    #[command(flatten)]
    target: Target,
    /// Print as JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum NodesCommand {
    /// List every node (the default).
    List,
    /// Show one node.
    Status { node: String },
}

/// `vigil nodes [list | status NODE]`.
pub fn nodes(args: NodesArgs) -> Result<Verdict, AnyError> {
    let only = match &args.command {
        None | Some(NodesCommand::List) => None,
        Some(NodesCommand::Status { node }) => Some(node.as_str()),
    };
    list_nodes(&args.target, only, args.json)
}

/// `vigil node status NODE` (a table of one).
pub fn node_status(node: &str, target: &Target) -> Result<Verdict, AnyError> {
    list_nodes(target, Some(node), false)
}

fn list_nodes(target: &Target, only: Option<&str>, json: bool) -> Result<Verdict, AnyError> {
    let nodes = match &target.remote.verifier {
        Some(url) => runtime()?.block_on(async {
            let mut client = VerifierClient::new(target.remote.channel(url, Role::Auditor).await?)
                .max_decoding_message_size(vigil_verifier::pull::MAX_EVIDENCE_BYTES);
            let response = client
                .list_nodes(v1::ListNodesRequest {
                    node_id: only.unwrap_or_default().to_owned(),
                })
                .await
                .map_err(|s| refused("ListNodes", &s))?;
            Ok::<_, AnyError>(response.into_inner().nodes)
        })?,
        None => {
            let mut store = open_existing_store(&target.db)?;
            let nodes = node_infos(&mut store, only)?;
            if let Some(id) = only
                && nodes.is_empty()
            {
                return Err(format!("no node {id:?} (`vigil nodes` lists the known ones)").into());
            }
            nodes
        }
    };
    if json {
        let rows: Vec<_> = nodes.iter().map(node_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "{:<24}  {:<10}  {:<15}  {:<10}  {:>4}  last seen (UTC)",
            "node", "group", "AK trust", "status", "GPUs"
        );
        for n in &nodes {
            let gpus = serde_json::from_str::<Vec<serde_json::Value>>(&n.gpu_identities_json)
                .map_or(0, |g| g.len());
            println!(
                "{:<24}  {:<10}  {:<15}  {:<10}  {:>4}  {}",
                n.node_id,
                n.group,
                n.ak_trust,
                n.status,
                gpus,
                format_unix_utc(n.last_seen_unix)
            );
        }
    }
    Ok(Verdict::Pass)
}

/// One node as `vigil nodes --json` prints it (absent values are null).
fn node_json(n: &v1::NodeInfo) -> serde_json::Value {
    let text = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    serde_json::json!({
        "node_id": n.node_id,
        "group": n.group,
        "ak_trust": n.ak_trust,
        "ak_name": n.ak_name_hex,
        "address": text(&n.address),
        "registered_at": Some(n.registered_at_unix).filter(|t| *t != 0),
        "last_seen": n.last_seen_unix,
        "last_verdict": text(&n.last_verdict),
        "status": n.status,
        "gpus": serde_json::from_str::<serde_json::Value>(&n.gpu_identities_json).ok(),
    })
}

/// `vigil node remove NODE`: locally, or through `Registrar.Deregister` (admin only).
pub fn remove_node(node: &str, target: &Target) -> Result<Verdict, AnyError> {
    let removed = match &target.remote.verifier {
        Some(url) => runtime()?.block_on(async {
            let mut client = RegistrarClient::new(target.remote.channel(url, Role::Admin).await?);
            let response = client
                .deregister(v1::DeregisterRequest {
                    node_id: node.to_owned(),
                })
                .await
                .map_err(|s| refused("Deregister", &s))?;
            Ok::<_, AnyError>(response.into_inner().removed)
        })?,
        None => {
            let verifier = open_verifier(&StoreArgs::local(target.db.clone()))?;
            verifier.remove_node(node)?
        }
    };
    if removed {
        println!("node {node} removed; its verdict history is kept");
        Ok(Verdict::Pass)
    } else {
        Err(format!("no node {node:?} (`vigil nodes` lists the known ones)").into())
    }
}

#[derive(Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    target: Target,
    /// Only this node's verdicts.
    #[arg(long)]
    node: Option<String>,
    /// Only the most recent N verdicts. Locally the default is all of them; a verifier
    /// returns 100 unless asked for more, and at most 1000.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    limit: Option<u32>,
    /// JSON lines: with --db every recorded result in full; with --verifier one summary
    /// (id, node_id, verified_at, verdict, summary) per verdict.
    #[arg(long)]
    json: bool,
}

/// `vigil history`: recorded verdicts, oldest first.
pub fn history(args: HistoryArgs) -> Result<Verdict, AnyError> {
    let (rows, truncated) = match &args.target.remote.verifier {
        Some(url) => {
            let response = runtime()?.block_on(async {
                let mut client =
                    VerifierClient::new(args.target.remote.channel(url, Role::Auditor).await?);
                let response = client
                    .history(v1::HistoryRequest {
                        node_id: args.node.clone().unwrap_or_default(),
                        limit: args.limit.unwrap_or(0),
                    })
                    .await
                    .map_err(|s| refused("History", &s))?;
                Ok::<_, AnyError>(response.into_inner())
            })?;
            if args.json {
                for v in &response.verdicts {
                    let line = serde_json::json!({
                        "id": v.id,
                        "node_id": v.node_id,
                        "verified_at": v.verified_at_unix,
                        "verdict": v.verdict,
                        "summary": v.summary,
                    });
                    println!("{line}");
                }
                if response.truncated {
                    eprintln!("{}", truncated_note(args.limit));
                }
                return Ok(Verdict::Pass);
            }
            (response.verdicts, response.truncated)
        }
        None => {
            let store = open_existing_store(&args.target.db)?;
            let mut records = store.verdicts(args.node.as_deref())?;
            let keep = args.limit.map_or(records.len(), |n| n as usize);
            let truncated = records.len() > keep;
            records.drain(..records.len() - keep.min(records.len()));
            if args.json {
                for record in &records {
                    println!("{}", record.result_json);
                }
                return Ok(Verdict::Pass);
            }
            let rows = records
                .iter()
                .map(|r| v1::VerdictSummary {
                    id: r.id,
                    node_id: r.node_id.clone(),
                    verified_at_unix: r.verified_at,
                    verdict: r.verdict.clone(),
                    summary: summarize_result(&r.result_json),
                })
                .collect();
            (rows, truncated)
        }
    };
    println!(
        "{:>4}  {:<20}  {:<24}  {:<7}  summary",
        "id", "time (UTC)", "node", "verdict"
    );
    for v in &rows {
        println!(
            "{:>4}  {:<20}  {:<24}  {:<7}  {}",
            v.id,
            format_unix_utc(v.verified_at_unix),
            v.node_id,
            v.verdict.to_uppercase(),
            v.summary
        );
    }
    println!(
        "{} verdict(s); each is in the audit log (`vigil audit list`, `vigil audit verify`)",
        rows.len()
    );
    if truncated {
        println!("{}", truncated_note(args.limit));
    }
    Ok(Verdict::Pass)
}

fn truncated_note(limit: Option<u32>) -> String {
    match limit {
        Some(n) if n >= MAX_HISTORY_LIMIT => format!(
            "older verdicts not shown: a verifier returns at most {MAX_HISTORY_LIMIT} \
             (filter with --node, or read them all with `vigil audit list`)"
        ),
        _ => "older verdicts not shown: give --limit N for more".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_json_turns_empty_fields_into_null() {
        let info = v1::NodeInfo {
            node_id: "n".into(),
            group: "g".into(),
            status: "unknown".into(),
            ak_trust: "tofu".into(),
            address: String::new(),
            registered_at_unix: 0,
            last_seen_unix: 5,
            last_verdict: String::new(),
            gpu_identities_json: "[]".into(),
            ak_name_hex: "0a".into(),
        };
        let json = node_json(&info);
        assert!(json["address"].is_null());
        assert!(json["registered_at"].is_null());
        assert!(json["last_verdict"].is_null());
        assert_eq!(json["gpus"], serde_json::json!([]));
        assert_eq!(json["ak_name"], "0a");
        let full = node_json(&v1::NodeInfo {
            address: "h:1".into(),
            registered_at_unix: 9,
            last_verdict: "pass".into(),
            gpu_identities_json: "not json".into(),
            ..info
        });
        assert_eq!(full["address"], "h:1");
        assert_eq!(full["registered_at"], 9);
        assert_eq!(full["last_verdict"], "pass");
        assert!(full["gpus"].is_null(), "unreadable GPU list");
    }

    #[test]
    fn an_unknown_role_is_refused_with_the_list_of_roles() {
        let error = client_tls(Some(Path::new("certs")), Some("root"), Role::Auditor)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("roles are attester"), "{error}");
        let tls = client_tls(Some(Path::new("certs")), Some("admin"), Role::Auditor)
            .ok()
            .flatten();
        assert_eq!(tls.map(|t| t.role), Some(Role::Admin));
        let default = client_tls(Some(Path::new("certs")), None, Role::Auditor)
            .ok()
            .flatten();
        assert_eq!(default.map(|t| t.role), Some(Role::Auditor));
        assert!(matches!(
            client_tls(None, Some("admin"), Role::Auditor),
            Ok(None)
        ));
    }

    #[test]
    fn the_truncation_note_says_what_to_do() {
        assert!(truncated_note(None).contains("--limit"));
        assert!(truncated_note(Some(MAX_HISTORY_LIMIT)).contains("audit list"));
    }
}
