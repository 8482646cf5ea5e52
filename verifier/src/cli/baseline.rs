//! `vigil baseline …`, `vigil keys …` and `vigil result …`: baselines as files a person
//! reviews (check, sign, capture, impact) and as versions in the verifier (put, assign, list,
//! show), locally (`--db`) or through a running verifier (`--verifier URL`, gRPC Baselines).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use vigil_proto::v1;
use vigil_verifier::attest::unix_now;
use vigil_verifier::baseline::{self, signature};
use vigil_verifier::report::{AttestationReport, Verdict, format_unix_utc};
use vigil_verifier::store_baselines::BaselineProto;

use crate::{AnyError, StoreArgs, open_verifier, runtime, verifier_channel};
use vigil_tls::Role;

#[derive(Args)]
pub struct Target {
    /// Use this running verifier (`vigil serve`) instead of the local database.
    #[arg(long, env = "VIGIL_VERIFIER")]
    verifier: Option<String>,
    /// The embedded SQLite database (not used with --verifier).
    #[arg(long, env = "VIGIL_DB", default_value = "vigil.db")]
    db: PathBuf,
    /// Certificate directory (`vigil dev-certs DIR` layout): mutual TLS to --verifier.
    #[arg(long, env = "VIGIL_TLS_DIR")]
    tls_dir: Option<PathBuf>,
    /// Role whose client certificate to present to --verifier (default: the command's).
    #[arg(long = "as", env = "VIGIL_ROLE", value_name = "ROLE")]
    as_role: Option<String>,
}

impl Target {
    async fn channel(&self, url: &str, role: Role) -> Result<tonic::transport::Channel, AnyError> {
        verifier_channel(url, self.tls_dir.as_deref(), self.as_role.as_deref(), role).await
    }

    /// The local database, with the default appraisal settings.
    fn open_local(&self) -> Result<std::sync::Arc<vigil_verifier::attest::Verifier>, AnyError> {
        open_verifier(&StoreArgs::local(self.db.clone()))
    }
}

#[derive(Subcommand)]
pub enum BaselineCommand {
    /// Validate a baseline file and print its rules (nothing is stored).
    Check { file: PathBuf },
    /// List the claim names rules may use.
    Claims,
    /// Store a baseline file as a new immutable version.
    Put {
        file: PathBuf,
        /// Detached signature (default: FILE.sig when it exists).
        #[arg(long)]
        sig: Option<PathBuf>,
        #[arg(long)]
        author: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        target: Target,
        /// Trusted baseline-signing keys (`ed25519 <hex> [label]` per line): when given, the
        /// baseline must carry a detached signature by one of them (not used with --verifier).
        #[arg(long, env = "VIGIL_BASELINE_KEYS")]
        baseline_keys: Option<PathBuf>,
    },
    /// Point a node group at a baseline (its latest version applies).
    Assign {
        group: String,
        baseline: String,
        #[arg(long)]
        author: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        target: Target,
    },
    /// Every stored version and the group assignments.
    List {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
    },
    /// Print one stored version's file.
    Show {
        name: String,
        /// Version number (default: the latest).
        #[arg(long)]
        version: Option<i64>,
        #[command(flatten)]
        target: Target,
    },
    /// Write a baseline from one trusted node's verified claims, for review.
    Capture {
        /// The golden node's attester, `host:port` (attested now, through --db).
        #[arg(long, conflicts_with = "evidence")]
        node: Option<String>,
        /// A result `vigil verify --json` printed (it carries the verified claims).
        #[arg(long)]
        evidence: Option<PathBuf>,
        /// Baseline name (default: the node id).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// What-if: which nodes would change status under this baseline, and why.
    Impact {
        file: PathBuf,
        /// Only nodes of this group (default: the groups the baseline is assigned to, else all).
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
    },
    /// Convert a Keylime runtime policy (JSON) into a baseline's `[ima]` section, validated.
    ImportKeylime {
        /// The runtime policy (`keylime_create_policy` output).
        policy: PathBuf,
        /// Baseline name.
        #[arg(long)]
        name: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Make an Ed25519 baseline-signing key; prints the line for the trusted keys file.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a baseline file (writes FILE.sig).
    Sign {
        file: PathBuf,
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print the JWKS that verifies this verifier's signed results.
    Jwks {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand)]
pub enum ResultCommand {
    /// Verify a signed attestation result (EAR JWT) offline.
    Verify {
        /// The token, or @FILE to read it from a file.
        token: String,
        /// JWKS file (`vigil keys jwks > jwks.json`); else the keys of --db / --verifier.
        #[arg(long)]
        jwks: Option<PathBuf>,
        /// Verification time, RFC 3339 or Unix seconds (default: now).
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
    },
}

fn read_text(path: &Path) -> Result<String, AnyError> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if metadata.len() > baseline::file::MAX_BASELINE_BYTES as u64 {
        return Err(format!(
            "{}: over the {}-byte limit",
            path.display(),
            baseline::file::MAX_BASELINE_BYTES
        )
        .into());
    }
    Ok(std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?)
}

async fn baselines_client(
    url: &str,
    target: &Target,
    role: Role,
) -> Result<v1::baselines_client::BaselinesClient<tonic::transport::Channel>, AnyError> {
    Ok(v1::baselines_client::BaselinesClient::new(
        target.channel(url, role).await?,
    ))
}

fn rpc_error(call: &str) -> impl FnOnce(tonic::Status) -> AnyError + '_ {
    move |s| format!("verifier refused {call}: {}", s.message()).into()
}

pub fn baseline_command(command: BaselineCommand) -> Result<Verdict, AnyError> {
    match command {
        BaselineCommand::Check { file } => {
            let text = read_text(&file)?;
            let compiled = baseline::parse_baseline(&file.display().to_string(), &text)?;
            println!(
                "{}: baseline {:?}, {} rules",
                file.display(),
                compiled.name,
                compiled.rules.len()
            );
            for rule in &compiled.rules {
                println!("  {:<30} {:<40} {}", rule.id, rule.claim, rule.expect);
            }
            Ok(Verdict::Pass)
        }
        BaselineCommand::Claims => {
            for (name, description) in vigil_verifier::claims::catalogue() {
                println!("{name:<40} {description}");
            }
            Ok(Verdict::Pass)
        }
        BaselineCommand::Put {
            file,
            sig,
            author,
            reason,
            target,
            baseline_keys,
        } => {
            let text = read_text(&file)?;
            let sig_path = sig.or_else(|| {
                let mut p = file.clone().into_os_string();
                p.push(".sig");
                Some(PathBuf::from(p)).filter(|p| p.exists())
            });
            let signature = sig_path.map(|p| read_text(&p)).transpose()?;
            let source_name = file.display().to_string();
            let stored = match &target.verifier {
                Some(url) => runtime()?.block_on(async {
                    let reply = baselines_client(url, &target, Role::Admin)
                        .await?
                        .put(v1::PutBaselineRequest {
                            toml: text,
                            signature_hex: signature.unwrap_or_default(),
                            author,
                            reason,
                        })
                        .await
                        .map_err(rpc_error("Baselines.Put"))?
                        .into_inner();
                    Ok::<_, AnyError>((reply.name, reply.version, reply.sha256))
                })?,
                None => {
                    let verifier = open_verifier(&StoreArgs {
                        baseline_keys,
                        ..StoreArgs::local(target.db.clone())
                    })?;
                    let stored = verifier.put_baseline(
                        &source_name,
                        &text,
                        signature.as_deref(),
                        &author,
                        &reason,
                        unix_now(),
                    )?;
                    (stored.name, stored.version, stored.sha256)
                }
            };
            println!(
                "stored baseline {}@{} (sha256 {})",
                stored.0, stored.1, stored.2
            );
            Ok(Verdict::Pass)
        }
        BaselineCommand::Assign {
            group,
            baseline: name,
            author,
            reason,
            target,
        } => {
            let version = match &target.verifier {
                Some(url) => runtime()?.block_on(async {
                    let reply = baselines_client(url, &target, Role::Admin)
                        .await?
                        .assign(v1::AssignBaselineRequest {
                            group: group.clone(),
                            baseline: name.clone(),
                            author,
                            reason,
                        })
                        .await
                        .map_err(rpc_error("Baselines.Assign"))?
                        .into_inner();
                    Ok::<_, AnyError>(reply.version)
                })?,
                None => {
                    let verifier = target.open_local()?;
                    verifier
                        .assign_baseline(&group, &name, &author, &reason, unix_now())?
                        .version
                }
            };
            println!("group {group} now uses baseline {name} (version {version} and later)");
            Ok(Verdict::Pass)
        }
        BaselineCommand::List { target, json } => {
            let listing = match &target.verifier {
                Some(url) => runtime()?.block_on(async {
                    let reply = baselines_client(url, &target, Role::Orchestrator)
                        .await?
                        .list(v1::ListBaselinesRequest {})
                        .await
                        .map_err(rpc_error("Baselines.List"))?
                        .into_inner();
                    Ok::<_, AnyError>(reply)
                })?,
                None => {
                    let verifier = target.open_local()?;
                    let (baselines, assignments) = verifier.read(|s| {
                        Ok::<_, vigil_verifier::store::StoreError>((
                            s.baselines()?,
                            s.baseline_assignments()?,
                        ))
                    })??;
                    v1::ListBaselinesResponse {
                        baselines: baselines.iter().map(|b| b.to_proto(false)).collect(),
                        assignments: assignments.into_iter().collect(),
                    }
                }
            };
            if json {
                let versions: Vec<serde_json::Value> = listing
                    .baselines
                    .iter()
                    .map(|b| {
                        serde_json::json!({
                            "name": b.name, "version": b.version, "sha256": b.sha256,
                            "author": b.author, "reason": b.reason, "created_at": b.created_at_unix,
                            "signed_by": b.signed_by, "rules": b.rules,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "baselines": versions,
                        "assignments": listing.assignments,
                    }))?
                );
                return Ok(Verdict::Pass);
            }
            let rows: Vec<[String; 6]> = listing
                .baselines
                .iter()
                .map(|b| {
                    [
                        b.name.clone(),
                        b.version.to_string(),
                        format_unix_utc(b.created_at_unix),
                        b.author.clone(),
                        b.rules.to_string(),
                        if b.signed_by.is_empty() {
                            b.reason.clone()
                        } else {
                            format!("{} (signed by {})", b.reason, b.signed_by)
                        },
                    ]
                })
                .collect();
            print!("{}", render_baseline_table(&rows));
            let mut assignments: Vec<_> = listing.assignments.iter().collect();
            assignments.sort();
            for (group, name) in assignments {
                println!("group {group} -> {name}");
            }
            Ok(Verdict::Pass)
        }
        BaselineCommand::Show {
            name,
            version,
            target,
        } => {
            let text = match &target.verifier {
                Some(url) => runtime()?.block_on(async {
                    let reply = baselines_client(url, &target, Role::Orchestrator)
                        .await?
                        .get(v1::GetBaselineRequest {
                            name: name.clone(),
                            version: version.unwrap_or(0),
                        })
                        .await
                        .map_err(rpc_error("Baselines.Get"))?
                        .into_inner();
                    Ok::<_, AnyError>(reply.toml)
                })?,
                None => {
                    let verifier = target.open_local()?;
                    verifier
                        .read(|s| s.baseline(&name, version))??
                        .ok_or_else(|| {
                            format!(
                                "no baseline {name}{}",
                                version.map(|v| format!("@{v}")).unwrap_or_default()
                            )
                        })?
                        .body
                }
            };
            print!("{text}");
            Ok(Verdict::Pass)
        }
        BaselineCommand::Capture {
            node,
            evidence,
            name,
            out,
            store,
        } => {
            let report: AttestationReport = match (node, evidence) {
                (Some(node), None) => {
                    let mut store = store;
                    // The golden node is attested now; its evidence must be authentic, whatever
                    // baseline (if any) its group has today.
                    store.allow_no_baseline = true;
                    // The allow-list is learned from the whole IMA list, not from the entries
                    // since an earlier attestation.
                    store.full_ima_lists = true;
                    let verifier = open_verifier(&store)?;
                    runtime()?.block_on(vigil_verifier::pull::attest_node(verifier, &node))?
                }
                (None, Some(path)) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    serde_json::from_str(&text).map_err(|e| {
                        format!(
                            "{}: not a `vigil verify --json` result: {e}",
                            path.display()
                        )
                    })?
                }
                _ => return Err("give --node ADDR or --evidence FILE".into()),
            };
            let failed: Vec<&str> = report
                .failed_checks()
                .filter(|c| !c.name.starts_with("baseline."))
                .map(|c| c.name.as_str())
                .collect();
            if !failed.is_empty() {
                return Err(format!(
                    "node {}'s evidence failed checks ({}): a baseline is never captured from evidence that is not authentic",
                    report.node_id,
                    failed.join(", ")
                )
                .into());
            }
            let claims = report
                .host_claims
                .as_ref()
                .ok_or("the result carries no claims (made by an older verifier?)")?;
            let name = name.unwrap_or_else(|| report.node_id.clone());
            let text =
                baseline::capture::capture(&name, claims, &format_unix_utc(report.verified_at));
            // What we write must load: a capture that does not validate is a bug, not a file.
            baseline::parse_baseline("captured baseline", &text)?;
            std::fs::write(&out, &text).map_err(|e| format!("{}: {e}", out.display()))?;
            println!(
                "wrote {} from node {} - review it before `vigil baseline put`",
                out.display(),
                report.node_id
            );
            Ok(Verdict::Pass)
        }
        BaselineCommand::Impact {
            file,
            group,
            target,
            json,
        } => {
            let text = read_text(&file)?;
            // Validate locally first so errors name the file.
            baseline::parse_baseline(&file.display().to_string(), &text)?;
            let report = match &target.verifier {
                Some(url) => runtime()?.block_on(async {
                    let reply = baselines_client(url, &target, Role::Orchestrator)
                        .await?
                        .impact(v1::ImpactRequest {
                            toml: text,
                            group: group.clone().unwrap_or_default(),
                        })
                        .await
                        .map_err(rpc_error("Baselines.Impact"))?
                        .into_inner();
                    Ok::<_, AnyError>(vigil_verifier::impact::ImpactReport {
                        baseline: reply.baseline,
                        nodes: reply.nodes.into_iter().map(Into::into).collect(),
                    })
                })?,
                None => target.open_local()?.impact(&text, group.as_deref())?,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let changed = report.changed().count();
                println!(
                    "baseline {} against {} node(s): {changed} would change status",
                    report.baseline,
                    report.nodes.len()
                );
                for node in &report.nodes {
                    println!(
                        "  {} {:<20} {:<10} {} -> {}",
                        if node.changes { "CHANGES" } else { "same   " },
                        node.node_id,
                        node.group,
                        node.current_status,
                        node.proposed_status
                    );
                    if node.changes {
                        for reason in &node.reasons {
                            println!("      {reason}");
                        }
                    }
                }
            }
            Ok(Verdict::Pass)
        }
        BaselineCommand::ImportKeylime { policy, name, out } => {
            let size = std::fs::metadata(&policy)
                .map_err(|e| format!("{}: {e}", policy.display()))?
                .len();
            if size > baseline::keylime::MAX_POLICY_BYTES as u64 {
                return Err(format!("{}: {size} bytes is too large", policy.display()).into());
            }
            let json = std::fs::read_to_string(&policy)
                .map_err(|e| format!("{}: {e}", policy.display()))?;
            let imported = baseline::keylime::import(&policy.display().to_string(), &json, &name)?;
            std::fs::write(&out, &imported.baseline)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            println!(
                "wrote {}: {} files ({} digests), {} excludes, {} verification keys; review it, then `vigil baseline put`",
                out.display(),
                imported.files,
                imported.digests,
                imported.excludes,
                imported.keys
            );
            Ok(Verdict::Pass)
        }
        BaselineCommand::Keygen { out } => {
            let (pkcs8, line) = signature::generate_signing_key()?;
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&out)
                .map_err(|e| format!("{}: {e}", out.display()))?;
            file.write_all(&pkcs8)?;
            println!("{line} {}", out.display());
            Ok(Verdict::Pass)
        }
        BaselineCommand::Sign { file, key } => {
            let content = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let pkcs8 = std::fs::read(&key).map_err(|e| format!("{}: {e}", key.display()))?;
            let signature = signature::sign_detached(&pkcs8, &content)?;
            let mut out = file.into_os_string();
            out.push(".sig");
            std::fs::write(&out, format!("{signature}\n"))?;
            println!("wrote {}", PathBuf::from(out).display());
            Ok(Verdict::Pass)
        }
    }
}

fn fetch_jwks(target: &Target) -> Result<vigil_ear::Jwks, AnyError> {
    match &target.verifier {
        Some(url) => runtime()?.block_on(async {
            let reply = v1::verifier_client::VerifierClient::new(
                target.channel(url, Role::Orchestrator).await?,
            )
            .get_result_keys(v1::GetResultKeysRequest {})
            .await
            .map_err(rpc_error("Verifier.GetResultKeys"))?
            .into_inner();
            Ok(serde_json::from_str(&reply.jwks_json)?)
        }),
        None => Ok(target.open_local()?.jwks()),
    }
}

pub fn keys_command(command: KeysCommand) -> Result<Verdict, AnyError> {
    match command {
        KeysCommand::Jwks { target } => {
            println!("{}", serde_json::to_string_pretty(&fetch_jwks(&target)?)?);
            Ok(Verdict::Pass)
        }
    }
}

pub fn result_command(command: ResultCommand) -> Result<Verdict, AnyError> {
    match command {
        ResultCommand::Verify {
            token,
            jwks,
            at,
            target,
            json,
        } => {
            let token = match token.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
                None => token,
            };
            let keys: vigil_ear::Jwks = match jwks {
                Some(path) => serde_json::from_str(
                    &std::fs::read_to_string(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?,
                )
                .map_err(|e| format!("{}: not a JWKS: {e}", path.display()))?,
                None => fetch_jwks(&target)?,
            };
            let now = match at {
                Some(text) => vigil_verifier::report::parse_utc(&text).ok_or_else(|| {
                    format!("--at {text:?}: expected YYYY-MM-DDTHH:MM:SSZ or Unix seconds")
                })?,
                None => unix_now(),
            };
            match vigil_ear::verify(token.trim(), &keys, now) {
                Ok(ear) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&ear)?);
                    } else {
                        println!(
                            "VALID result for {} - status {}, baseline {}, issued {}, expires {}",
                            ear.subject,
                            serde_json::to_value(ear.status())?
                                .as_str()
                                .unwrap_or_default(),
                            ear.baseline_version.as_deref().unwrap_or("none"),
                            format_unix_utc(ear.issued_at),
                            format_unix_utc(ear.expires_at)
                        );
                        for (name, submodule) in &ear.submods {
                            println!(
                                "  {name:<6} {}",
                                serde_json::to_value(submodule.status)?
                                    .as_str()
                                    .unwrap_or_default()
                            );
                        }
                    }
                    Ok(Verdict::Pass)
                }
                Err(error) => {
                    println!("INVALID result: {error}");
                    Ok(Verdict::Fail)
                }
            }
        }
    }
}

/// Widest a `baseline list` column may grow before its values are cut with an ellipsis
/// (name, version, created, author, rules; the last column, reason, is never cut).
const BASELINE_COLUMN_CAPS: [usize; 5] = [40, 8, 20, 24, 6];

/// `value` cut to `width` characters, the last one an ellipsis when anything was cut.
fn fit(value: &str, width: usize) -> String {
    if value.chars().count() <= width {
        return value.to_owned();
    }
    let mut cut: String = value.chars().take(width.saturating_sub(1)).collect();
    cut.push('\u{2026}');
    cut
}

/// The `baseline list` table: each column as wide as its widest value (or its heading), up
/// to a cap past which values are cut with an ellipsis, so columns never run into each other.
fn render_baseline_table(rows: &[[String; 6]]) -> String {
    const HEADINGS: [&str; 6] = ["baseline", "ver", "created", "author", "rules", "reason"];
    let mut widths = [0usize; 5];
    for (i, width) in widths.iter_mut().enumerate() {
        *width = rows
            .iter()
            .map(|row| row[i].chars().count())
            .chain([HEADINGS[i].len()])
            .max()
            .unwrap_or(0)
            .min(BASELINE_COLUMN_CAPS[i]);
    }
    let line = |cells: [&str; 6]| {
        let [name, version, created, author, rules, reason] = cells;
        let [w_name, w_version, w_created, w_author, w_rules] = widths;
        format!(
            "{:<w_name$}  {:>w_version$}  {:<w_created$}  {:<w_author$}  {:>w_rules$}  {reason}",
            fit(name, w_name),
            fit(version, w_version),
            fit(created, w_created),
            fit(author, w_author),
            fit(rules, w_rules),
        )
        .trim_end()
        .to_owned()
            + "\n"
    };
    let mut out = line(HEADINGS);
    for row in rows {
        out.push_str(&line([
            &row[0], &row[1], &row[2], &row[3], &row[4], &row[5],
        ]));
    }
    out
}

#[cfg(test)]
mod table_tests {
    use super::*;

    fn row(name: &str, author: &str) -> [String; 6] {
        [
            name.into(),
            "3".into(),
            "2026-05-01T00:00:00Z".into(),
            author.into(),
            "12".into(),
            "initial import".into(),
        ]
    }

    #[test]
    fn columns_fit_their_data_and_never_overflow() {
        let long_name = "gpu-fleet-production-hopper-h100-sxm5-baseline-v2";
        let text = render_baseline_table(&[
            row("lab", "alice"),
            row(long_name, "someone-with-a-long-address@example.org"),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        // Every column starts at the same place on every line.
        // In characters: an ellipsis is one column but three bytes.
        let col = |line: &str, what: &str| line[..line.find(what).unwrap()].chars().count();
        let created = col(lines[1], "2026-05-01");
        assert_eq!(col(lines[0], "created"), created, "{text}");
        assert_eq!(col(lines[2], "2026-05-01"), created, "{text}");
        assert!(lines[2].contains('\u{2026}'), "long values are cut: {text}");
        assert!(!lines[2].contains(long_name), "{text}");
        let reason = col(lines[1], "initial import");
        assert_eq!(col(lines[2], "initial import"), reason, "{text}");
        // Short data: columns no wider than the heading or the widest value.
        let short = render_baseline_table(&[row("lab", "alice")]);
        assert!(
            short.lines().nth(1).unwrap().starts_with("lab       "),
            "{short}"
        );
        assert_eq!(fit("abcdef", 4), "abc\u{2026}");
        assert_eq!(fit("abc", 4), "abc");
    }
}
