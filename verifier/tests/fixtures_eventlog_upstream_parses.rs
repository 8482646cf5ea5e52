//! The event-by-event parse agrees with the parses upstream projects stored beside their
//! logs: tpm2-tools' `tpm2_eventlog` YAML (`event-pretty*/`) and immune-guard's JSON
//! (`pkg/eventlog/testdata/*.json`): event count, types, PCR indexes, digests and data.

mod common;

use vigil_verifier::evidence::eventlog::parse;
use vigil_verifier::evidence::eventlog::render::{event_type_name, view};

#[derive(Debug, Default, PartialEq)]
struct UpstreamEvent {
    number: usize,
    pcr: u32,
    event_type: String,
    digests: Vec<(String, String)>,
}

/// The fields this test compares, read line by line from tpm2_eventlog's YAML.
fn tpm2_tools_events(yaml: &str) -> Vec<UpstreamEvent> {
    let mut events: Vec<UpstreamEvent> = Vec::new();
    let mut algorithm: Option<String> = None;
    let mut pcr_seen = true;
    for line in yaml.lines() {
        let line = line.trim();
        let value = |prefix: &str| {
            line.strip_prefix(prefix)
                .map(|v| v.trim().trim_matches('"').to_owned())
        };
        if let Some(n) = value("- EventNum:") {
            events.push(UpstreamEvent {
                number: n.parse().unwrap(),
                ..Default::default()
            });
            algorithm = None;
            pcr_seen = false;
        } else if line.starts_with("PCRIndex:") && pcr_seen {
            // Version 1 of the YAML has no EventNum: each PCRIndex starts the next event.
            events.push(UpstreamEvent {
                number: events.len(),
                ..Default::default()
            });
            algorithm = None;
            pcr_seen = true;
            if let Some(event) = events.last_mut() {
                event.pcr = value("PCRIndex:").unwrap().parse().unwrap();
            }
        } else if let Some(event) = events.last_mut() {
            if line.starts_with("PCRIndex:") {
                pcr_seen = true;
            }
            if let Some(pcr) = value("PCRIndex:") {
                event.pcr = pcr.parse().unwrap();
            } else if let Some(kind) = value("EventType:") {
                event.event_type = kind;
            } else if let Some(alg) = value("- AlgorithmId:") {
                algorithm = Some(alg);
            } else if let Some(digest) = value("Digest:") {
                let alg = algorithm.take().unwrap_or_else(|| "sha1".to_owned());
                if event.number > 0 || event.digests.is_empty() {
                    event.digests.push((alg, digest));
                }
            }
        }
    }
    events
}

#[test]
fn parses_agree_with_tpm2_eventlog() {
    let Some(root) = common::fixtures("tpm2-tools/fixtures") else {
        return;
    };
    let mut compared = 0;
    for dir in [
        "tpm2-tools/fixtures/event-pretty",
        "tpm2-tools/fixtures/event-pretty-39",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let yaml_path = entry.unwrap().path();
            let name = yaml_path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches(".yaml")
                .to_owned();
            let log_path = root.join("tpm2-tools/fixtures").join(&name);
            if !log_path.exists() {
                continue;
            }
            let upstream = tpm2_tools_events(&std::fs::read_to_string(&yaml_path).unwrap());
            let log =
                parse(&std::fs::read(&log_path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let ours = view(&log);
            assert_eq!(
                ours.events.len(),
                upstream.len(),
                "{dir}/{name}: event count"
            );
            for (event, theirs) in ours.events.iter().zip(&upstream) {
                assert_eq!(event.number, theirs.number, "{name}");
                assert_eq!(event.pcr, theirs.pcr, "{name} event {}", event.number);
                assert_eq!(
                    event.event_type, theirs.event_type,
                    "{name} event {}",
                    event.number
                );
                for (alg, digest) in &theirs.digests {
                    assert_eq!(
                        event.digests.get(alg),
                        Some(digest),
                        "{name} event {} {alg}",
                        event.number
                    );
                }
            }
            compared += 1;
        }
    }
    eprintln!("{compared} tpm2_eventlog parses agree event by event");
    assert!(compared >= 10);
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64"),
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[test]
fn parses_agree_with_immune_guard() {
    let Some(root) = common::fixtures("tpm2-tools/fixtures") else {
        return;
    };
    let dir = root.join("immune-guard-oss/pkg/eventlog/testdata");
    let mut compared = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let json_path = entry.unwrap().path();
        if json_path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let log_path = json_path.with_extension("");
        if !log_path.exists() {
            continue;
        }
        let upstream: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
        let log = parse(&std::fs::read(&log_path).unwrap()).unwrap();
        for theirs in &upstream {
            let number = theirs["Sequence"].as_u64().unwrap() as usize;
            let event = log
                .events
                .iter()
                .find(|e| e.number == number)
                .unwrap_or_else(|| panic!("{json_path:?}: no event {number}"));
            assert_eq!(
                u64::from(event.pcr),
                theirs["Index"].as_u64().unwrap(),
                "{json_path:?} event {number}"
            );
            assert_eq!(
                event_type_name(event.event_type),
                event_type_name(theirs["Type"].as_u64().unwrap() as u32)
            );
            assert_eq!(
                event.data,
                base64_decode(theirs["Data"].as_str().unwrap_or_default()),
                "{json_path:?} event {number} data"
            );
        }
        // Upstream leaves out only the crypto-agile header.
        let skipped = log.events.len() - upstream.len();
        assert!(
            skipped <= 1,
            "{json_path:?}: {} events, upstream {}",
            log.events.len(),
            upstream.len()
        );
        compared += 1;
    }
    eprintln!("{compared} immune-guard parses agree event by event");
    assert!(compared >= 6);
}
