//! Replaying an event log: what each PCR must hold if the log is complete and honest.
//!
//! Rules that real machines need:
//! - PCRs start at zero, except PCR 0, which starts at the locality the firmware started
//!   from: `00..03` after an EV_NO_ACTION "StartupLocality" event with locality 3; and
//!   locality 4 when an EV_EFI_HCRTM_EVENT is logged without a StartupLocality event.
//! - EV_NO_ACTION events are never extended: the Spec ID header, StartupLocality, SP800-155
//!   reference manifests, and Windows WBCL trust points (PCR index 0xFFFFFFFF mid-log).
//! - Every algorithm the log declares and Vigil can compute is replayed as its own bank;
//!   others (sm3_256) are listed as not replayed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::parse::{EV_NO_ACTION, EventLog};
use crate::evidence::tpm::HashAlg;

pub const EV_EFI_HCRTM_EVENT: u32 = 0x8000_0010;

/// PCRs a PC Client TPM has.
pub const PCR_COUNT: u32 = 24;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replay {
    /// bank → PCR → value, for every PCR the log touched.
    #[serde(serialize_with = "hex_banks")]
    pub banks: BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>>,
    /// PCR → event numbers that extended it.
    pub extended_by: BTreeMap<u32, Vec<usize>>,
    pub startup_locality: Option<u8>,
    /// Algorithm ids declared by the log that Vigil does not replay.
    pub not_replayed: Vec<u16>,
    /// Events whose digest for a replayed bank was missing (they could not be extended).
    pub missing_digests: Vec<usize>,
}

fn hex_banks<S: serde::Serializer>(
    banks: &BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let as_hex: BTreeMap<&str, BTreeMap<u32, String>> = banks
        .iter()
        .map(|(bank, pcrs)| {
            (
                bank.name(),
                pcrs.iter().map(|(i, v)| (*i, hex::encode(v))).collect(),
            )
        })
        .collect();
    serde::Serialize::serialize(&as_hex, serializer)
}

/// The locality of a "StartupLocality" EV_NO_ACTION event, if this is one.
pub fn startup_locality(event_type: u32, data: &[u8]) -> Option<u8> {
    if event_type != EV_NO_ACTION {
        return None;
    }
    data.strip_prefix(b"StartupLocality\0")
        .and_then(|rest| rest.first().copied())
}

pub fn replay(log: &EventLog) -> Replay {
    let locality = log
        .events
        .iter()
        .find_map(|e| startup_locality(e.event_type, &e.data))
        .or_else(|| {
            log.events
                .iter()
                .any(|e| e.event_type == EV_EFI_HCRTM_EVENT)
                .then_some(4)
        });
    let mut banks = BTreeMap::new();
    let mut not_replayed = Vec::new();
    let mut extended_by: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    let mut missing_digests = Vec::new();
    for algorithm in &log.algorithms {
        let Some(hash) = algorithm.hash else {
            not_replayed.push(algorithm.id);
            continue;
        };
        let mut pcrs: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        let initial = |pcr: u32| {
            let mut value = vec![0u8; hash.digest_len()];
            if pcr == 0
                && let (Some(locality), Some(last)) = (locality, value.last_mut())
            {
                *last = locality;
            }
            value
        };
        for event in &log.events {
            if event.event_type == EV_NO_ACTION || event.pcr >= PCR_COUNT {
                continue;
            }
            let Some(digest) = event.digest(algorithm.id) else {
                if !missing_digests.contains(&event.number) {
                    missing_digests.push(event.number);
                }
                continue;
            };
            let current = pcrs.entry(event.pcr).or_insert_with(|| initial(event.pcr));
            let mut input = Vec::with_capacity(current.len() + digest.len());
            input.extend_from_slice(current);
            input.extend_from_slice(digest);
            *current = hash.digest(&input).unwrap_or_default();
            let numbers = extended_by.entry(event.pcr).or_default();
            if !numbers.contains(&event.number) {
                numbers.push(event.number);
            }
        }
        if locality.is_some() {
            pcrs.entry(0).or_insert_with(|| initial(0));
        }
        banks.insert(hash, pcrs);
    }
    Replay {
        banks,
        extended_by,
        startup_locality: locality,
        not_replayed,
        missing_digests,
    }
}

/// A PCR whose replayed value is not the expected (quoted) one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PcrMismatch {
    pub bank: &'static str,
    pub pcr: u32,
    pub expected: String,
    pub replayed: String,
    pub events: Vec<usize>,
}

impl std::fmt::Display for PcrMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{} quoted {} but the log replays to {} (events {:?})",
            self.bank, self.pcr, self.expected, self.replayed, self.events
        )
    }
}

/// Compares the replay with expected values (bank → PCR → value) for every expected PCR the
/// log covers (extended by an event, or PCR 0 set by a startup locality). PCRs the log never
/// touches (IMA's PCR 10, application PCRs 16/23) say nothing about the log and are skipped,
/// as are PCRs in `ignore` and banks the log does not replay.
pub fn compare(
    replay: &Replay,
    expected: &BTreeMap<HashAlg, BTreeMap<u32, Vec<u8>>>,
    ignore: &[u32],
) -> Vec<PcrMismatch> {
    let mut mismatches = Vec::new();
    for (bank, pcrs) in expected {
        let Some(replayed_bank) = replay.banks.get(bank) else {
            continue;
        };
        for (pcr, value) in pcrs {
            if ignore.contains(pcr) {
                continue;
            }
            let Some(replayed) = replayed_bank.get(pcr) else {
                continue;
            };
            if replayed != value {
                mismatches.push(PcrMismatch {
                    bank: bank.name(),
                    pcr: *pcr,
                    expected: hex::encode(value),
                    replayed: hex::encode(replayed),
                    events: replay.extended_by.get(pcr).cloned().unwrap_or_default(),
                });
            }
        }
    }
    mismatches
}
