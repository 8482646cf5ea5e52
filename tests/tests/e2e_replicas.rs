//! Several `vigil serve` replicas on one PostgreSQL database (issue #14): a node registered
//! through one replica is verified through another and the first one's Watch stream reports
//! it; a nonce is single-use across replicas; and when a replica is killed under load, no
//! acknowledged verdict is lost, the shared audit log verifies, and the survivor takes over
//! the dead replica's nodes when their leases expire.
//!
//! Every test starts its own PostgreSQL server (`vigil_e2e::postgres`): without PostgreSQL
//! the tests print "skipped" and pass, except under `CI`, where they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tonic::transport::{Channel, Endpoint};
use vigil_e2e::postgres::{PG_DATABASE, PG_USER, PgServer, postgres_bin_dir};
use vigil_e2e::*;
use vigil_proto::v1::attester_client::AttesterClient;
use vigil_proto::v1::audit_client::AuditClient;
use vigil_proto::v1::verifier_client::VerifierClient;
use vigil_proto::v1::{
    AttestNodeRequest, AttestRequest, AttestationResult, AuditQuery, ChallengeRequest,
    ChallengeResponse, CheckpointRequest, Evidence, GetEvidenceRequest, HistoryRequest,
    ListNodesRequest, Verdict, VerdictChange, WatchRequest,
};

/// Starts one replica on the shared database: every replica gets the same audit key file
/// (the first one creates it), its own `--replica-id`, the EK trust directory and
/// `--allow-no-baseline`.
fn replica(pg: &PgServer, audit_key: &Path, id: &str, trust: &Path, poll_interval: u32) -> Server {
    let url = pg.url();
    let interval = poll_interval.to_string();
    start_verifier(
        Path::new(&url),
        &[
            "--audit-key",
            audit_key.to_str().unwrap(),
            "--replica-id",
            id,
            "--poll-interval",
            &interval,
            "--ek-roots",
            trust.to_str().unwrap(),
            "--allow-no-baseline",
        ],
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn json_of(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output)).unwrap_or(serde_json::Value::Null)
}

/// `vigil node register ADDRESS --verifier URL`; panics unless it exits 0.
fn register(attester: &Server, verifier: &Server) -> serde_json::Value {
    let out = vigil(&[
        "node",
        "register",
        &attester.address,
        "--verifier",
        &verifier.url(),
        "--json",
    ]);
    assert_eq!(
        code(&out),
        0,
        "registration through {} failed: {}{}",
        verifier.url(),
        stdout(&out),
        stderr(&out)
    );
    let report = json_of(&out);
    assert_eq!(report["ak_trust"], "ek-certified", "{report:#}");
    report
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn check<'a>(result: &'a AttestationResult, name: &str) -> &'a vigil_proto::v1::Check {
    result
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {result:#?}"))
}

fn failed(result: &AttestationResult) -> Vec<String> {
    result
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

async fn challenge(verifier: &Server, node: &str) -> ChallengeResponse {
    VerifierClient::connect(verifier.url())
        .await
        .unwrap()
        .challenge(ChallengeRequest {
            node_id: node.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("Challenge on {}: {e}", verifier.url()))
        .into_inner()
}

async fn evidence(attester: &Server, challenge: &ChallengeResponse) -> Evidence {
    AttesterClient::connect(attester.url())
        .await
        .unwrap()
        .get_evidence(GetEvidenceRequest {
            nonce: challenge.nonce.clone(),
            selection: challenge.selection.clone(),
            ima_offset: challenge.ima_offset,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn attest(verifier: &Server, node: &str, evidence: Evidence) -> AttestationResult {
    VerifierClient::connect(verifier.url())
        .await
        .unwrap()
        .attest(AttestRequest {
            node_id: node.into(),
            evidence: Some(evidence),
        })
        .await
        .unwrap_or_else(|e| panic!("Attest on {}: {e}", verifier.url()))
        .into_inner()
}

fn assert_passes(result: &AttestationResult, what: &str) {
    assert_eq!(
        result.verdict,
        Verdict::Pass as i32,
        "{what}: expected pass, failures: {:#?}",
        failed(result)
    );
    assert!(check(result, "nonce.fresh").passed, "{what}");
}

/// The nonce is refused as spent: `nonce.fresh` fails saying it was already used (a replay).
fn assert_replay(result: &AttestationResult, what: &str) {
    assert_eq!(result.verdict, Verdict::Fail as i32, "{what}: {result:#?}");
    let fresh = check(result, "nonce.fresh");
    assert!(!fresh.passed, "{what}: {fresh:?}");
    assert!(
        fresh.detail.contains("already used") && fresh.detail.contains("replay"),
        "{what}: nonce.fresh should name a replay of a used nonce, says {:?}",
        fresh.detail
    );
}

/// Two replicas (A and B, not polling) on a fresh PostgreSQL, sharing one audit key, and one
/// attester with an EK certificate their `--ek-roots` trust. Fields drop in order: servers
/// first, the database last.
struct TwoReplicas {
    a: Server,
    b: Server,
    attester: Server,
    key: std::path::PathBuf,
    _tpm: Swtpm,
    _ca: EkCa,
    _dir: TempDir,
    _pg: PgServer,
}

/// `None` (the harness said why) when PostgreSQL is not installed outside CI.
fn two_replicas(label: &str, node: &str) -> Option<TwoReplicas> {
    let pg = PgServer::start()?;
    let ca = EkCa::new();
    let tpm = Swtpm::start_with_ek_certificate(&ca);
    let trust = ca.trust_dir();
    let dir = TempDir::new(label);
    let key = dir.join("audit.key");
    let a = replica(&pg, &key, "A", &trust, 0);
    let b = replica(&pg, &key, "B", &trust, 0);
    let attester = start_attester(&tpm, &dir.join("attester"), node, &[]);
    Some(TwoReplicas {
        a,
        b,
        attester,
        key,
        _tpm: tpm,
        _ca: ca,
        _dir: dir,
        _pg: pg,
    })
}

#[test]
fn register_through_a_verify_through_b_watch_on_a_sees_it() {
    let started = Instant::now();
    let Some(setup) = two_replicas("replicas-watch", "replica-node") else {
        return;
    };
    // Every field bound: a `..` would drop the database and the TPM right here.
    let TwoReplicas {
        a,
        b,
        attester,
        key,
        _tpm,
        _ca,
        _dir,
        _pg,
    } = setup;
    assert!(
        Path::new(&format!("{}.result-key", key.display())).is_file(),
        "the EAR result key lives beside the audit key"
    );

    runtime().block_on(async {
        // Watch on A from the beginning, before anything happened.
        let mut on_a = VerifierClient::connect(a.url()).await.unwrap();
        let mut stream = on_a
            .watch(WatchRequest {
                from_seq: 0,
                node_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner();

        // Registered through A: unknown until its first verdict.
        register(&attester, &a);

        // Verified through B, by name: B finds the registration A recorded.
        let out = vigil(&["verify", "replica-node", "--verifier", &b.url(), "--json"]);
        let report = json_of(&out);
        assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
        assert_eq!(report["verdict"], "pass", "{report:#}");
        assert_eq!(report["node_id"], "replica-node");
        assert_eq!(report["ak_trust"], "ek-certified", "{report:#}");
        let nonce = report["nonce"].as_str().expect("the report's nonce");

        // A's Watch delivers B's verdict change.
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut seen = Vec::new();
        let trusted = loop {
            let Some(change) = next_change(&mut stream, deadline).await else {
                panic!(
                    "Watch on A did not deliver B's verdict within 15 s; it delivered {seen:#?}"
                );
            };
            if change.node_id == "replica-node" && change.new_status == "trusted" {
                break change;
            }
            seen.push(change);
        };
        assert_eq!(trusted.old_status, "unknown", "{trusted:?}");
        let result: serde_json::Value = serde_json::from_str(&trusted.result_json)
            .unwrap_or_else(|e| panic!("result_json {:?}: {e}", trusted.result_json));
        assert_eq!(
            result["nonce"], nonce,
            "the change A reports is the verdict B made: {result:#}"
        );
        assert_eq!(result["verdict"], "pass", "{result:#}");
        assert!(!trusted.result_token.is_empty(), "{trusted:?}");
        assert!(
            seen.iter().all(|c| c.seq < trusted.seq),
            "changes out of order: {seen:#?} then {trusted:?}"
        );
        assert!(
            seen.iter().all(|c| c.new_status != "trusted"),
            "nothing but B's verdict made the node trusted: {seen:#?}"
        );

        // B lists the node registered through A, with B's verdict.
        let nodes = VerifierClient::connect(b.url())
            .await
            .unwrap()
            .list_nodes(ListNodesRequest {
                node_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .nodes;
        assert_eq!(nodes.len(), 1, "{nodes:#?}");
        let node = &nodes[0];
        assert_eq!(node.node_id, "replica-node");
        assert!(node.registered_at_unix > 0, "{node:?}");
        assert_eq!(node.ak_trust, "ek-certified", "{node:?}");
        assert_eq!(node.status, "trusted", "{node:?}");
        assert_eq!(node.last_verdict, "pass", "{node:?}");
        let port = attester.address.rsplit(':').next().unwrap();
        assert!(
            node.address.contains(&format!(":{port}")),
            "registered address {:?}, attester at {}",
            node.address,
            attester.address
        );

        // And A's history holds the verdict B recorded.
        let history = on_a
            .history(HistoryRequest {
                node_id: "replica-node".into(),
                limit: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .verdicts;
        assert_eq!(history.len(), 1, "{history:#?}");
        assert_eq!(history[0].verdict, "pass");
    });
    eprintln!(
        "register via A, verify via B, Watch on A: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_nonce_from_a_answered_to_b_is_accepted_once_and_a_replay_to_a_is_refused() {
    let started = Instant::now();
    let Some(setup) = two_replicas("replicas-nonce", "nonce-node") else {
        return;
    };
    // Every field bound: a `..` would drop the database and the TPM right here.
    let TwoReplicas {
        a,
        b,
        attester,
        key: _,
        _tpm,
        _ca,
        _dir,
        _pg,
    } = setup;
    register(&attester, &b);

    runtime().block_on(async {
        // Issued by A, answered to B: accepted.
        let issued = challenge(&a, "nonce-node").await;
        let answer = evidence(&attester, &issued).await;
        let first = attest(&b, "nonce-node", answer.clone()).await;
        assert_passes(&first, "A's nonce answered to B");
        assert_eq!(first.nonce, issued.nonce);

        // The same evidence to A, which issued the nonce: spent on B, refused as a replay.
        let replay = attest(&a, "nonce-node", answer.clone()).await;
        assert_replay(&replay, "replay to A of evidence B accepted");
        // And to B again.
        let replay = attest(&b, "nonce-node", answer).await;
        assert_replay(&replay, "replay to B of evidence B accepted");

        // The other way round: issued by B, answered to A, replayed to B.
        let issued = challenge(&b, "nonce-node").await;
        let answer = evidence(&attester, &issued).await;
        assert_passes(
            &attest(&a, "nonce-node", answer.clone()).await,
            "B's nonce answered to A",
        );
        assert_replay(
            &attest(&b, "nonce-node", answer).await,
            "replay to B of evidence A accepted",
        );
    });
    eprintln!("nonces across replicas: {:?}", started.elapsed());
}

#[test]
fn the_same_evidence_sent_to_a_and_b_at_once_passes_exactly_once() {
    const ROUNDS: usize = 30;
    /// Presentations of each round's evidence to each replica, all at once.
    const PER_REPLICA: usize = 2;
    let started = Instant::now();
    let Some(setup) = two_replicas("replicas-race", "race-node") else {
        return;
    };
    // Every field bound: a `..` would drop the database and the TPM right here.
    let TwoReplicas {
        a,
        b,
        attester,
        key: _,
        _tpm,
        _ca,
        _dir,
        _pg,
    } = setup;
    register(&attester, &a);

    runtime().block_on(async {
        // One connection per presentation, so they reach the replicas in parallel.
        let mut clients = Vec::new();
        for server in [&a, &b] {
            for _ in 0..PER_REPLICA {
                clients.push(VerifierClient::connect(server.url()).await.unwrap());
            }
        }
        let mut losers = 0;
        for round in 0..ROUNDS {
            let issued = challenge(if round % 2 == 0 { &a } else { &b }, "race-node").await;
            let answer = evidence(&attester, &issued).await;
            let calls = clients.iter().map(|client| {
                let mut client = client.clone();
                let request = AttestRequest {
                    node_id: "race-node".into(),
                    evidence: Some(answer.clone()),
                };
                async move { client.attest(request).await }
            });
            let results: Vec<AttestationResult> = futures_join_all(calls)
                .await
                .into_iter()
                .map(|r| r.expect("Attest").into_inner())
                .collect();
            let passed = results
                .iter()
                .filter(|r| r.verdict == Verdict::Pass as i32)
                .count();
            assert_eq!(
                passed,
                1,
                "round {round}: the nonce must be used exactly once; failures: {:#?}",
                results.iter().map(failed).collect::<Vec<_>>()
            );
            for (i, loser) in results
                .iter()
                .enumerate()
                .filter(|(_, r)| r.verdict != Verdict::Pass as i32)
            {
                losers += 1;
                let replica = if i < PER_REPLICA { "A" } else { "B" };
                assert_replay(
                    loser,
                    &format!("round {round}: a losing presentation to {replica}"),
                );
            }
        }
        assert_eq!(losers, ROUNDS * (2 * PER_REPLICA - 1));
    });
    eprintln!(
        "{ROUNDS} rounds of {} simultaneous presentations to A and B: {:?}",
        2 * PER_REPLICA,
        started.elapsed()
    );
}

/// Runs `futures` concurrently on the current task and returns their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

/// The node leases: (node, holder, expires_at), read with `psql` (the tests crate has no
/// PostgreSQL client library).
fn leases(pg: &PgServer) -> Vec<(String, String, i64)> {
    let psql: PathBuf = postgres_bin_dir()
        .expect("PostgreSQL binaries (the server runs)")
        .join("psql");
    let port = pg.port.to_string();
    let out = run(Command::new(psql)
        .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &port])
        .args(["-U", PG_USER, "-d", PG_DATABASE, "-c"])
        .arg("SELECT node_id, holder, expires_at FROM node_leases ORDER BY node_id"));
    assert!(out.status.success(), "psql: {}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('|').collect();
            assert_eq!(fields.len(), 3, "psql row {line:?}");
            (
                fields[0].to_owned(),
                fields[1].to_owned(),
                fields[2].parse().unwrap(),
            )
        })
        .collect()
}

/// Unexpired leases by holder.
fn live_leases(pg: &PgServer) -> BTreeMap<String, BTreeSet<String>> {
    let now = unix_now();
    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (node, holder, expires_at) in leases(pg) {
        if expires_at > now {
            held.entry(holder).or_default().insert(node);
        }
    }
    held
}

/// One acknowledged verdict: the node, its nonce (hex), and the replica that answered.
#[derive(Debug, Clone)]
struct Ack {
    node: String,
    nonce: String,
    replica: usize,
    at: Instant,
}

#[derive(Debug, Default)]
struct LoadReport {
    acks: Vec<Ack>,
    /// (replica, when, error) of each failed call.
    errors: Vec<(usize, Instant, String)>,
    /// Acknowledged verdicts that were not a pass.
    not_pass: Vec<String>,
}

/// One client: AttestNode by node id, alternating between the two replicas and round the
/// nodes, until `stop`; a replica that fails once is given up and the client carries on
/// through the other.
async fn load_client(
    index: usize,
    urls: [String; 2],
    nodes: Vec<String>,
    stop: Arc<AtomicBool>,
) -> LoadReport {
    let mut report = LoadReport::default();
    let clients: Vec<VerifierClient<Channel>> = urls
        .iter()
        .map(|url| {
            let channel = Endpoint::from_shared(url.clone())
                .unwrap()
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(20))
                .connect_lazy();
            VerifierClient::new(channel)
        })
        .collect();
    let mut given_up = [false, false];
    let mut i = index;
    while !stop.load(Ordering::SeqCst) {
        let mut target = i % 2;
        if given_up[target] {
            target = 1 - target;
        }
        if given_up[target] {
            break;
        }
        let node = nodes[(i / 2) % nodes.len()].clone();
        i += 1;
        let mut client = clients[target].clone();
        match client
            .attest_node(AttestNodeRequest {
                address: String::new(),
                node_id: node.clone(),
            })
            .await
        {
            Ok(result) => {
                let result = result.into_inner();
                if result.verdict != Verdict::Pass as i32 {
                    report
                        .not_pass
                        .push(format!("{node} via {target}: {:?}", failed(&result)));
                }
                report.acks.push(Ack {
                    node: result.node_id.clone(),
                    nonce: hex::encode(&result.nonce),
                    replica: target,
                    at: Instant::now(),
                });
            }
            Err(status) => {
                report
                    .errors
                    .push((target, Instant::now(), status.to_string()));
                given_up[target] = true;
            }
        }
    }
    report
}

/// The ids of `node`'s recorded verdicts (the newest thousand).
async fn verdict_ids(verifier: &VerifierClient<Channel>, node: &str) -> BTreeSet<i64> {
    let reply = verifier
        .clone()
        .history(HistoryRequest {
            node_id: node.into(),
            limit: 1000,
        })
        .await
        .unwrap()
        .into_inner();
    reply.verdicts.into_iter().map(|v| v.id).collect()
}

#[test]
fn killing_a_under_load_loses_nothing_and_b_takes_over_its_nodes() {
    const INTERVAL: u64 = 2;
    const NODES: usize = 3;
    const CLIENTS: usize = 4;
    let started = Instant::now();
    let Some(pg) = PgServer::start() else {
        return;
    };
    let ca = EkCa::new();
    let tpms: Vec<Swtpm> = (0..NODES)
        .map(|_| Swtpm::start_with_ek_certificate(&ca))
        .collect();
    let trust = ca.trust_dir();
    let dir = TempDir::new("replicas-kill");
    let key = dir.join("audit.key");
    let names = ["A", "B"];
    let mut replicas: Vec<Option<Server>> = names
        .iter()
        .map(|name| Some(replica(&pg, &key, name, &trust, INTERVAL as u32)))
        .collect();
    let urls = [
        replicas[0].as_ref().unwrap().url(),
        replicas[1].as_ref().unwrap().url(),
    ];
    let nodes: Vec<String> = (0..NODES).map(|i| format!("fleet-node-{i}")).collect();
    let attesters: Vec<Server> = tpms
        .iter()
        .zip(&nodes)
        .map(|(tpm, node)| start_attester(tpm, &dir.join(node), node, &[]))
        .collect();
    for (i, attester) in attesters.iter().enumerate() {
        register(attester, replicas[i % 2].as_ref().unwrap());
    }
    eprintln!("set up in {:?}", started.elapsed());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            runtime.spawn(load_client(
                i,
                urls.clone(),
                nodes.clone(),
                Arc::clone(&stop),
            ))
        })
        .collect();
    let load_started = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));

    // "A" is the replica that holds node leases when the kill comes. Both poll, but which
    // one holds a node at a given moment is up to their pollers' timing, so the test asks
    // the database rather than assuming; the other is "B".
    let deadline = Instant::now() + Duration::from_secs(3 * INTERVAL + 5);
    let (victim, held) = loop {
        let live = live_leases(&pg);
        if let Some((holder, held)) = live.iter().max_by_key(|(_, held)| held.len()) {
            let victim = names
                .iter()
                .position(|n| n == holder)
                .unwrap_or_else(|| panic!("lease held by an unknown replica: {live:?}"));
            break (victim, held.clone());
        }
        assert!(
            Instant::now() < deadline,
            "no replica holds a node lease while polling every {INTERVAL} s: {:?}",
            leases(&pg)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let survivor = 1 - victim;
    eprintln!(
        "leases before the kill: {:?}; killing {} (holding {held:?}) after {:?} of load",
        live_leases(&pg),
        names[victim],
        load_started.elapsed()
    );
    // SIGKILL: no lease is given back. Calls may fail from the signal on (`killing`), and the
    // victim answers nothing once it has been reaped (`killed_at`).
    let killing = Instant::now();
    drop(replicas[victim].take());
    let killed_at = Instant::now();

    // The survivor takes each of the victim's nodes when its lease expires.
    let takeover_limit = Duration::from_secs(3 * INTERVAL + 5);
    let takeover = loop {
        let live = live_leases(&pg);
        let taken = live.get(names[survivor]).cloned().unwrap_or_default();
        if held.is_subset(&taken) {
            break killing.elapsed();
        }
        assert!(
            killing.elapsed() < takeover_limit,
            "{} did not take over {held:?} within {takeover_limit:?} of the kill: leases {:?}",
            names[survivor],
            leases(&pg)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "{} leased all of {held:?} {takeover:?} after the kill",
        names[survivor]
    );

    // The load carries on through the survivor for a while, then stops.
    let load_until = killed_at + Duration::from_secs(3);
    std::thread::sleep(load_until.saturating_duration_since(Instant::now()));
    stop.store(true, Ordering::SeqCst);
    let mut acks = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let report = runtime.block_on(task).unwrap();
        assert!(
            report.not_pass.is_empty(),
            "client {i}: acknowledged verdicts that did not pass: {:#?}",
            report.not_pass
        );
        for (replica, at, error) in &report.errors {
            assert_eq!(
                *replica, victim,
                "client {i}: {} failed ({error}); only the killed replica may",
                names[*replica]
            );
            assert!(
                *at >= killing,
                "client {i}: {} failed before it was killed: {error}",
                names[*replica]
            );
        }
        let before = report.acks.iter().filter(|a| a.at < killing).count();
        let after: Vec<&Ack> = report.acks.iter().filter(|a| a.at > killed_at).collect();
        assert!(
            after.iter().all(|a| a.replica == survivor),
            "client {i}: answered by the killed replica after the kill"
        );
        assert!(
            !after.is_empty(),
            "client {i} did not carry on through {} after the kill: {:?}",
            names[survivor],
            report.errors
        );
        eprintln!(
            "client {i}: {} verdicts acknowledged ({before} before the kill, {} after), errors {:?}",
            report.acks.len(),
            after.len(),
            report.errors
        );
        acks.extend(report.acks);
    }
    for (replica, name) in names.iter().enumerate() {
        assert!(
            acks.iter().any(|a| a.replica == replica && a.at < killing),
            "{name} acknowledged nothing before the kill: the load did not reach both replicas"
        );
    }

    runtime.block_on(async {
        let survivor_url = urls[survivor].clone();
        let mut verifier = VerifierClient::connect(survivor_url.clone()).await.unwrap();
        // With the load stopped and the victim dead, only the survivor's poller records
        // verdicts: each node (the victim's included) gets a new one within an interval or two.
        let mut before = BTreeMap::new();
        for node in &nodes {
            before.insert(node.clone(), verdict_ids(&verifier, node).await);
        }
        let polled_at = Instant::now();
        let poll_limit = Duration::from_secs(2 * INTERVAL + 5);
        for node in &nodes {
            loop {
                let now = verdict_ids(&verifier, node).await;
                if now.difference(&before[node]).next().is_some() {
                    break;
                }
                assert!(
                    polled_at.elapsed() < poll_limit,
                    "{node} (held by {} before the kill: {}) got no new verdict from {}'s poller within {poll_limit:?}",
                    names[victim],
                    held.contains(node),
                    names[survivor]
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        eprintln!(
            "every node re-attested by {}'s poller {:?} after the load stopped",
            names[survivor],
            polled_at.elapsed()
        );

        // No node went unknown: the takeover came inside the attestation window.
        let listed = verifier
            .list_nodes(ListNodesRequest { node_id: String::new() })
            .await
            .unwrap()
            .into_inner()
            .nodes;
        assert_eq!(listed.len(), NODES);
        for node in &listed {
            assert_eq!(node.status, "trusted", "{node:?}");
            assert_eq!(node.last_verdict, "pass", "{node:?}");
        }
        let mut watch = verifier
            .watch(WatchRequest { from_seq: 0, node_id: String::new() })
            .await
            .unwrap()
            .into_inner();
        let mut changes = Vec::new();
        while let Some(change) =
            next_change(&mut watch, Instant::now() + Duration::from_millis(1500)).await
        {
            changes.push(change);
        }
        let went_away: Vec<&VerdictChange> = changes
            .iter()
            .filter(|c| c.old_status == "trusted" && c.new_status != "trusted")
            .collect();
        assert!(went_away.is_empty(), "status changes away from trusted: {went_away:#?}");
        let turned_trusted: BTreeSet<&str> = changes
            .iter()
            .filter(|c| c.new_status == "trusted")
            .map(|c| c.node_id.as_str())
            .collect();
        assert_eq!(turned_trusted.len(), NODES, "{changes:#?}");

        // Every acknowledged verdict is in the shared audit log.
        let mut audit = AuditClient::connect(survivor_url).await.unwrap();
        let checkpoint = audit
            .checkpoint(CheckpointRequest {})
            .await
            .unwrap()
            .into_inner();
        let mut stream = audit
            .query(AuditQuery {
                kind: "verdict".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut logged: BTreeMap<String, String> = BTreeMap::new();
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        while let Some(record) = stream.message().await.unwrap() {
            assert_eq!(record.kind, "verdict");
            let body: serde_json::Value = serde_json::from_str(&record.body_json).unwrap();
            let nonce = body["nonce"].as_str().unwrap().to_owned();
            *per_node.entry(record.subject.clone()).or_default() += 1;
            assert!(
                logged.insert(nonce.clone(), record.subject).is_none(),
                "two verdict entries for nonce {nonce}"
            );
        }
        assert!(
            (logged.len() as u64) < checkpoint.tree_size,
            "{} verdict entries, tree size {}",
            logged.len(),
            checkpoint.tree_size
        );
        let mut acked_per_node: BTreeMap<&str, usize> = BTreeMap::new();
        let mut lost = Vec::new();
        for ack in &acks {
            *acked_per_node.entry(ack.node.as_str()).or_default() += 1;
            match logged.get(&ack.nonce) {
                Some(subject) => assert_eq!(subject, &ack.node, "nonce {}", ack.nonce),
                None => lost.push(ack),
            }
        }
        assert!(lost.is_empty(), "acknowledged verdicts missing from the audit log: {lost:#?}");
        for (node, acked) in &acked_per_node {
            let count = per_node.get(*node).copied().unwrap_or(0);
            assert!(count >= *acked, "{node}: {acked} acknowledged, {count} logged");
        }
        eprintln!(
            "{} acknowledged verdicts, all in the audit log ({} verdict entries: {per_node:?}; tree size {})",
            acks.len(),
            logged.len(),
            checkpoint.tree_size
        );
    });

    // The shared log verifies.
    let url = pg.url();
    let out = vigil(&[
        "audit",
        "verify",
        "--db",
        &url,
        "--audit-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(
        code(&out),
        0,
        "audit verify --db {url}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    eprintln!("audit verify: {}", stdout(&out).trim());
    eprintln!("kill-under-load test: {:?}", started.elapsed());
}
