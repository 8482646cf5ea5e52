//! Replay: recompute the PCRs a list extends and find the prefix of the list that the quoted
//! values prove. Every entry's template hash is checked against its data first, so a
//! rewritten field is named by entry, not only noticed as a PCR mismatch.
//!
//! Banks other than the template hash's are extended in one of two ways, depending on the
//! kernel: newer kernels extend the bank's own hash of the template data, older ones the
//! template hash zero-padded to the bank's size. Both are followed until the quote decides.
//! Violations (zero template hash) are extended as all ones.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::hash::HashAlg;
use crate::list::{Entry, Location, TemplateHash};

/// PCR values the quote proves: (bank, PCR) → value. Only banks Vigil can compute.
pub type Quoted = BTreeMap<(HashAlg, u32), Vec<u8>>;

/// How a bank is extended for each entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Convention {
    /// The bank is the template hash's: the recorded template hash.
    TemplateHash,
    /// The bank's own hash of the template data (Linux 5.11 and later).
    DataDigest,
    /// The SHA-1 template hash padded with zeros to the bank's size (older kernels).
    PaddedTemplateHash,
}

/// One way of replaying one PCR of one bank, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    pub bank: HashAlg,
    pub pcr: u32,
    pub convention: Convention,
    #[serde(with = "hex_value")]
    pub value: Vec<u8>,
}

mod hex_value {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// The running PCR values after the first `entries` entries since boot: what an incremental
/// replay starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayState {
    pub entries: u64,
    pub tracks: Vec<Track>,
}

impl ReplayState {
    /// Nothing measured yet: every PCR at zero.
    pub fn boot() -> ReplayState {
        ReplayState {
            entries: 0,
            tracks: Vec::new(),
        }
    }
}

/// A replay that reached the quoted values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replayed {
    /// Entries of the given list that the quote covers (the rest came after the quote).
    pub matched: usize,
    /// The state after them: only the tracks that matched.
    pub state: ReplayState,
}

/// A bank's replayed value where it differs from the quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub bank: HashAlg,
    pub pcr: u32,
    pub quoted: String,
    /// The replayed value after every entry, per convention tried.
    pub replayed: Vec<(Convention, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("the list's template hash ({0}) cannot be computed, so it cannot be replayed")]
    UnknownTemplateHash(TemplateHash),
    #[error(
        "entry {entry} ({location}, template {template}, {name}): the template hash {recorded} is not the {alg} of the entry's data ({computed}): the entry was altered"
    )]
    TemplateHash {
        entry: u64,
        location: Location,
        template: String,
        name: String,
        alg: HashAlg,
        recorded: String,
        computed: String,
    },
    #[error(
        "entry {entry} ({location}) extends PCR {pcr}, which the quote does not cover in any bank Vigil can compute"
    )]
    PcrNotQuoted {
        entry: u64,
        location: Location,
        pcr: u32,
    },
    #[error("the quote covers PCR 10 in no bank Vigil can compute (sha1, sha256, sha384, sha512)")]
    NoQuotedBank,
    #[error("{}", no_match_message(*.replayed, *.first_entry, .mismatches))]
    NoMatch {
        first_entry: u64,
        replayed: usize,
        mismatches: Vec<Mismatch>,
    },
}

fn no_match_message(replayed: usize, first: u64, mismatches: &[Mismatch]) -> String {
    let detail: Vec<String> = mismatches
        .iter()
        .map(|m| {
            let tried: Vec<String> = m
                .replayed
                .iter()
                .map(|(c, v)| format!("{v} ({c:?})"))
                .collect();
            format!(
                "{}:{} quoted {}, replayed {}",
                m.bank,
                m.pcr,
                m.quoted,
                tried.join(" or ")
            )
        })
        .collect();
    format!(
        "no prefix of the {replayed} entries from entry {first} reproduces the quoted PCRs \
         (every template hash matches its data, so entries were inserted, removed or re-hashed, \
         or the list belongs to another boot): {}",
        detail.join("; ")
    )
}

struct Group {
    matching: usize,
}

/// Replays `entries` (the list from entry `start.entries` on) from `start` and returns the
/// shortest prefix whose PCR values equal `quoted` in every bank quoted for every PCR the list
/// extends (PCR 10 always counts). `template_hash` is the list's template hash algorithm.
pub fn replay(
    entries: &[Entry<'_>],
    template_hash: TemplateHash,
    start: &ReplayState,
    quoted: &Quoted,
) -> Result<Replayed, ReplayError> {
    let TemplateHash::Known(template_alg) = template_hash else {
        return Err(ReplayError::UnknownTemplateHash(template_hash));
    };
    let mut tracks: Vec<Track> = start.tracks.clone();
    let mut pcrs: BTreeSet<u32> = tracks.iter().map(|t| t.pcr).collect();
    pcrs.insert(10);
    for pcr in pcrs.clone() {
        add_tracks(&mut tracks, pcr, template_alg, quoted);
    }
    if !tracks.iter().any(|t| t.pcr == 10) {
        return Err(ReplayError::NoQuotedBank);
    }
    let mut groups: BTreeMap<(HashAlg, u32), Group> = BTreeMap::new();
    for track in &tracks {
        let group = groups
            .entry((track.bank, track.pcr))
            .or_insert(Group { matching: 0 });
        if quoted.get(&(track.bank, track.pcr)) == Some(&track.value) {
            group.matching += 1;
        }
    }
    let mut unmatched = groups.values().filter(|g| g.matching == 0).count();
    if unmatched == 0 {
        return Ok(matched_at(0, start.entries, &tracks, quoted));
    }
    let ones = [0xffu8; MAX_DIGEST];
    for (position, entry) in entries.iter().enumerate() {
        if !pcrs.contains(&entry.pcr) {
            let before = tracks.len();
            add_tracks(&mut tracks, entry.pcr, template_alg, quoted);
            if tracks.len() == before {
                return Err(ReplayError::PcrNotQuoted {
                    entry: entry.index,
                    location: entry.location,
                    pcr: entry.pcr,
                });
            }
            pcrs.insert(entry.pcr);
            for track in tracks.get(before..).unwrap_or_default() {
                let group = groups
                    .entry((track.bank, track.pcr))
                    .or_insert(Group { matching: 0 });
                if group.matching == 0 {
                    unmatched += 1;
                }
            }
        }
        let violation = entry.is_violation();
        if !violation {
            let computed = Hashed::of(template_alg, &[&entry.hashed]);
            if computed.as_slice() != entry.template_hash.as_ref() {
                let name = crate::template::decode(entry)
                    .map(|m| m.name)
                    .unwrap_or_else(|_| "fields unreadable".into());
                return Err(ReplayError::TemplateHash {
                    entry: entry.index,
                    location: entry.location,
                    template: entry.template.to_string(),
                    name,
                    alg: template_alg,
                    recorded: hex::encode(&entry.template_hash),
                    computed: hex::encode(computed.as_slice()),
                });
            }
        }
        // Each bank's digest of the template data, computed once per entry.
        let mut data_digests: [Option<Hashed>; HashAlg::ALL.len()] = [None; HashAlg::ALL.len()];
        for track in tracks.iter_mut().filter(|t| t.pcr == entry.pcr) {
            let key = (track.bank, track.pcr);
            let target = quoted.get(&key);
            let was = target == Some(&track.value);
            let bank = track.bank;
            let len = bank.digest_len();
            let padded;
            let digest: &[u8] = match (track.convention, violation) {
                (Convention::TemplateHash, false) => &entry.template_hash,
                (Convention::TemplateHash | Convention::DataDigest, true) => {
                    ones.get(..len).unwrap_or_default()
                }
                (Convention::DataDigest, false) => match data_digests.get_mut(bank_slot(bank)) {
                    Some(slot) => slot
                        .get_or_insert_with(|| Hashed::of(bank, &[&entry.hashed]))
                        .as_slice(),
                    None => {
                        padded = Hashed::of(bank, &[&entry.hashed]);
                        padded.as_slice()
                    }
                },
                (Convention::PaddedTemplateHash, _) => {
                    let source: &[u8] = if violation {
                        ones.get(..template_alg.digest_len()).unwrap_or_default()
                    } else {
                        &entry.template_hash
                    };
                    padded = Hashed::padded(source, len);
                    padded.as_slice()
                }
            };
            let extended = Hashed::of(bank, &[&track.value, digest]);
            track.value.clear();
            track.value.extend_from_slice(extended.as_slice());
            let now = target == Some(&track.value);
            if was != now
                && let Some(group) = groups.get_mut(&key)
            {
                if now {
                    group.matching += 1;
                    if group.matching == 1 {
                        unmatched -= 1;
                    }
                } else {
                    group.matching -= 1;
                    if group.matching == 0 {
                        unmatched += 1;
                    }
                }
            }
        }
        if unmatched == 0 {
            return Ok(matched_at(position + 1, start.entries, &tracks, quoted));
        }
    }
    let mut mismatches: BTreeMap<(HashAlg, u32), Mismatch> = BTreeMap::new();
    for track in &tracks {
        let key = (track.bank, track.pcr);
        let quoted_value = quoted.get(&key).map(hex::encode).unwrap_or_default();
        mismatches
            .entry(key)
            .or_insert_with(|| Mismatch {
                bank: track.bank,
                pcr: track.pcr,
                quoted: quoted_value,
                replayed: Vec::new(),
            })
            .replayed
            .push((track.convention, hex::encode(&track.value)));
    }
    Err(ReplayError::NoMatch {
        first_entry: start.entries,
        replayed: entries.len(),
        mismatches: mismatches
            .into_values()
            .filter(|m| !m.replayed.iter().any(|(_, v)| *v == m.quoted))
            .collect(),
    })
}

/// Largest digest of any bank (SHA-512).
const MAX_DIGEST: usize = 64;

/// A digest on the stack. Replay computes two to four short hashes per entry (the template
/// hash check, each bank's digest of the data, each extend), so it hashes without allocating
/// and with RustCrypto's SHA-1/SHA-2, which use the CPU's SHA extensions where it has them
/// (ring's SHA-1 is portable code). The values are those of `HashAlg::digest`.
#[derive(Clone, Copy)]
struct Hashed {
    bytes: [u8; MAX_DIGEST],
    len: usize,
}

impl Hashed {
    /// The `alg` digest of `parts` concatenated.
    fn of(alg: HashAlg, parts: &[&[u8]]) -> Hashed {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Hashed {
            let mut hasher = D::new();
            for part in parts {
                hasher.update(part);
            }
            Hashed::padded(&hasher.finalize(), 0)
        }
        match alg {
            HashAlg::Sha1 => run::<sha1::Sha1>(parts),
            HashAlg::Sha256 => run::<sha2::Sha256>(parts),
            HashAlg::Sha384 => run::<sha2::Sha384>(parts),
            HashAlg::Sha512 => run::<sha2::Sha512>(parts),
        }
    }

    /// `source` padded with zeros to `len` bytes (never shorter than `source`, at most 64).
    fn padded(source: &[u8], len: usize) -> Hashed {
        let mut bytes = [0u8; MAX_DIGEST];
        let copied = source.len().min(MAX_DIGEST);
        if let (Some(to), Some(from)) = (bytes.get_mut(..copied), source.get(..copied)) {
            to.copy_from_slice(from);
        }
        Hashed {
            bytes,
            len: len.max(copied).min(MAX_DIGEST),
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

fn bank_slot(bank: HashAlg) -> usize {
    HashAlg::ALL
        .iter()
        .position(|alg| *alg == bank)
        .unwrap_or_default()
}

/// Tracks for `pcr` in every quoted bank, unless the state already follows it.
fn add_tracks(tracks: &mut Vec<Track>, pcr: u32, template_alg: HashAlg, quoted: &Quoted) {
    if tracks.iter().any(|t| t.pcr == pcr) {
        return;
    }
    for (bank, _) in quoted.keys().filter(|(_, p)| *p == pcr) {
        let conventions: &[Convention] = if *bank == template_alg {
            &[Convention::TemplateHash]
        } else if template_alg == HashAlg::Sha1 {
            &[Convention::DataDigest, Convention::PaddedTemplateHash]
        } else {
            &[Convention::DataDigest]
        };
        for convention in conventions {
            tracks.push(Track {
                bank: *bank,
                pcr,
                convention: *convention,
                value: vec![0u8; bank.digest_len()],
            });
        }
    }
}

fn matched_at(matched: usize, first: u64, tracks: &[Track], quoted: &Quoted) -> Replayed {
    Replayed {
        matched,
        state: ReplayState {
            entries: first + matched as u64,
            tracks: tracks
                .iter()
                .filter(|t| quoted.get(&(t.bank, t.pcr)) == Some(&t.value))
                .cloned()
                .collect(),
        },
    }
}

/// The values a `boot_aggregate` entry may hold for PCR values `pcrs` of one bank: the hash
/// of PCRs 0-7 (older kernels) or 0-9 (Linux 5.8 and later, SHA-256 and up), concatenated.
/// None when a needed PCR is missing.
pub fn boot_aggregates(alg: HashAlg, pcrs: &BTreeMap<u32, Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for last in [7u32, 9] {
        let mut data = Vec::new();
        let mut complete = true;
        for index in 0..=last {
            match pcrs.get(&index) {
                Some(value) => data.extend_from_slice(value),
                None => complete = false,
            }
        }
        if complete {
            out.push(alg.digest(&data));
        }
    }
    out
}
