//! Attesting Huawei Ascend NPUs, simulated for the fake DCMI library (`tests/fakes/fake_dcmi.c`
//! with `FAKE_DCMI_ATTEST_DIR`): a test CA (root → intermediate → IAK, ECDSA P-256 signed with
//! ring, X.509 DER written by hand), and per NPU the files the fake copies into its evidence:
//! a TPMS_ATTEST quote whose extraData is the NPU's challenge, its TPMT_SIGNATURE by the IAK,
//! the SHA-256 PCR values, a TCG boot log and an IMA list that reproduce them.
//!
//! Indices. The verifier derives NPU `N`'s challenge from its nonce and `GpuEvidence.index`
//! (`vigil_verifier::evidence::ascend::challenge_for(nonce, N)`). The attester numbers devices
//! 0.. across vendors, NVIDIA, AMD, Huawei, Biren in that order (`attester/src/gpu.rs`), each
//! vendor's in its library's order; the fake DCMI lists its NPUs in logic id order (logic id =
//! card × devices per card + device). So with `--gpus huawei` alone, index `N` is logic id
//! `N`, and [`NpuCa::prepare`] writes NPU `N`'s files under logic id `N`
//! (`quote-N.bin`, …). With other vendors collected too, the indices would start after theirs.
//!
//! The fake serves one IAK certificate (`iak.der`) to every NPU, so the simulated NPUs share
//! one IAK; each still signs a quote over its own challenge, and its own PCRs (its boot log
//! names it).

use std::collections::BTreeMap;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};

/// 2020-01-01T00:00:00Z: the CA certificates' notBefore.
pub const CA_NOT_BEFORE: i64 = 1_577_836_800;
/// 2024-01-01T00:00:00Z: the IAK certificate's notBefore.
pub const IAK_NOT_BEFORE: i64 = 1_704_067_200;
/// 2045-01-01T00:00:00Z: every certificate's notAfter.
pub const NOT_AFTER: i64 = 2_366_841_600;

/// The PCRs every simulated quote covers (SHA-256 bank): the boot chain 0-7 and IMA's 10.
pub const QUOTED_PCRS: [u32; 9] = [0, 1, 2, 3, 4, 5, 6, 7, 10];

/// The organisation every simulated CA names: a foreign CA differs only by its keys.
pub const VENDOR: &str = "Vigil Test NPU Vendor";

// ---------------------------------------------------------------------------------------
// DER, just enough for X.509 certificates.

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn uint(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::new();
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    tlv(0x02, &content)
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = vec![0u8];
    content.extend_from_slice(bytes);
    tlv(0x03, &content)
}

const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];

fn name(common_name: &str) -> Vec<u8> {
    let rdn =
        |oid: &[u8], value: &str| tlv(0x31, &seq(&[tlv(0x06, oid), tlv(0x0c, value.as_bytes())]));
    seq(&[rdn(OID_O, VENDOR), rdn(OID_CN, common_name)])
}

/// UTCTime (every time used here is before 2050).
fn time(unix: i64) -> Vec<u8> {
    let text = vigil_verifier::report::format_unix_utc(unix);
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    tlv(0x17, format!("{}Z", &digits[2..]).as_bytes())
}

fn ec_spki(point: &[u8]) -> Vec<u8> {
    seq(&[
        seq(&[tlv(0x06, OID_EC_PUBLIC_KEY), tlv(0x06, OID_P256)]),
        bit_string(point),
    ])
}

/// A P-256 key as PKCS#8, to be loaded for ASN.1 (certificates) or fixed-width (TPM) signing.
fn new_key() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &SystemRandom::new(),
    )
    .expect("P-256 key")
    .as_ref()
    .to_vec()
}

fn signer(pkcs8: &[u8], algorithm: &'static signature::EcdsaSigningAlgorithm) -> EcdsaKeyPair {
    EcdsaKeyPair::from_pkcs8(algorithm, pkcs8).expect("P-256 key")
}

/// A v3 certificate for `subject_key`, signed by `issuer_key`; a CA gets basicConstraints
/// cA=TRUE (critical).
fn certificate(
    issuer: &str,
    subject: &str,
    subject_key: &[u8],
    issuer_key: &[u8],
    (serial, not_before): (u64, i64),
    ca: bool,
) -> Vec<u8> {
    let algorithm = seq(&[tlv(0x06, OID_ECDSA_SHA256)]);
    let public = signer(subject_key, &signature::ECDSA_P256_SHA256_ASN1_SIGNING);
    let mut parts = vec![
        tlv(0xa0, &uint(2)),
        uint(serial),
        algorithm.clone(),
        name(issuer),
        seq(&[time(not_before), time(NOT_AFTER)]),
        name(subject),
        ec_spki(public.public_key().as_ref()),
    ];
    if ca {
        let extension = seq(&[
            tlv(0x06, OID_BASIC_CONSTRAINTS),
            tlv(0x01, &[0xff]),
            tlv(0x04, &seq(&[tlv(0x01, &[0xff])])),
        ]);
        parts.push(tlv(0xa3, &seq(&[extension])));
    }
    let tbs = seq(&parts);
    let signature = signer(issuer_key, &signature::ECDSA_P256_SHA256_ASN1_SIGNING)
        .sign(&SystemRandom::new(), &tbs)
        .expect("sign certificate");
    seq(&[tbs, algorithm, bit_string(signature.as_ref())])
}

// ---------------------------------------------------------------------------------------
// Measurements: a boot log (PCRs 0-3), an IMA list (PCR 10).

fn sha256(data: &[u8]) -> Vec<u8> {
    crate::sha256(data)
}

fn extend(pcr: &mut Vec<u8>, digest: &[u8]) {
    *pcr = sha256(&[pcr.as_slice(), digest].concat());
}

/// NPU `index`'s crypto-agile TCG event log (SHA-256 bank) and the PCRs 0-7 it produces. The
/// last event names the NPU, so every NPU's PCR 3 differs.
pub fn boot_log(index: u32) -> (Vec<u8>, BTreeMap<u32, Vec<u8>>) {
    const EV_S_CRTM_VERSION: u32 = 0x0000_0008;
    const EV_IPL: u32 = 0x0000_000d;
    let kernel = format!("NPU {index} kernel Image");
    let events: [(u32, u32, &[u8]); 5] = [
        (0, EV_S_CRTM_VERSION, b"NPU BSBC 1.0"),
        (0, EV_IPL, b"xloader"),
        (1, EV_IPL, b"UEFI firmware"),
        (2, EV_IPL, b"TEE OS"),
        (3, EV_IPL, kernel.as_bytes()),
    ];
    let mut pcrs: BTreeMap<u32, Vec<u8>> = (0..8).map(|i| (i, vec![0u8; 32])).collect();
    let mut log_events = Vec::new();
    for (pcr, event_type, data) in events {
        let digest = sha256(data);
        if let Some(value) = pcrs.get_mut(&pcr) {
            extend(value, &digest);
        }
        log_events.push(crate::LogEvent {
            pcr,
            event_type,
            digest,
            data: data.to_vec(),
        });
    }
    (crate::synthetic_event_log(&log_events), pcrs)
}

/// A binary `ima-ng` entry with a SHA-256 template hash (as GTA's NPU lists), and that hash.
fn ima_entry(path: &str, digest: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut digest_field = b"sha256:\0".to_vec();
    digest_field.extend_from_slice(digest);
    let mut name_field = path.as_bytes().to_vec();
    name_field.push(0);
    let mut data = Vec::new();
    for field in [&digest_field, &name_field] {
        data.extend((field.len() as u32).to_le_bytes());
        data.extend_from_slice(field);
    }
    let template_hash = sha256(&data);
    let mut entry = Vec::new();
    entry.extend(10u32.to_le_bytes());
    entry.extend(&template_hash);
    entry.extend(6u32.to_le_bytes());
    entry.extend_from_slice(b"ima-ng");
    entry.extend((data.len() as u32).to_le_bytes());
    entry.extend(data);
    (entry, template_hash)
}

/// An IMA list (boot_aggregate over PCRs 0-7, then two files) and the PCR 10 it produces.
pub fn ima_list(boot_pcrs: &BTreeMap<u32, Vec<u8>>) -> (Vec<u8>, Vec<u8>) {
    let aggregate = vigil_ima::boot_aggregates(vigil_ima::HashAlg::Sha256, boot_pcrs)
        .into_iter()
        .next()
        .expect("PCRs 0-7 give a boot_aggregate");
    let mut list = Vec::new();
    let mut pcr10 = vec![0u8; 32];
    for (path, digest) in [
        ("boot_aggregate", aggregate),
        ("/usr/local/Ascend/driver/tools/npu-smi", sha256(b"npu-smi")),
        ("/usr/lib64/libascend_hal.so", sha256(b"libascend_hal")),
    ] {
        let (entry, template_hash) = ima_entry(path, &digest);
        list.extend(entry);
        extend(&mut pcr10, &template_hash);
    }
    (list, pcr10)
}

/// TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE over the SHA-256 PCRs [`QUOTED_PCRS`] with
/// `challenge` as extraData.
pub fn quote(challenge: &[u8], pcrs: &BTreeMap<u32, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xff54_4347u32.to_be_bytes()); // TPM_GENERATED_VALUE
    out.extend(0x8018u16.to_be_bytes()); // TPM_ST_ATTEST_QUOTE
    let signer = [&0x000bu16.to_be_bytes()[..], &[0x5a; 32]].concat();
    out.extend((signer.len() as u16).to_be_bytes());
    out.extend(&signer);
    out.extend((challenge.len() as u16).to_be_bytes());
    out.extend(challenge);
    out.extend(123_456_789u64.to_be_bytes()); // clock
    out.extend(7u32.to_be_bytes()); // resetCount
    out.extend(2u32.to_be_bytes()); // restartCount
    out.push(1); // safe
    out.extend(0x0001_0002_0003_0004u64.to_be_bytes()); // firmwareVersion
    out.extend(1u32.to_be_bytes()); // one selection
    out.extend(0x000bu16.to_be_bytes()); // SHA-256
    out.push(3);
    let mut bitmap = [0u8; 3];
    for pcr in QUOTED_PCRS {
        bitmap[(pcr / 8) as usize] |= 1 << (pcr % 8);
    }
    out.extend(bitmap);
    let concatenated: Vec<u8> = QUOTED_PCRS
        .iter()
        .flat_map(|i| pcrs.get(i).cloned().expect("every quoted PCR has a value"))
        .collect();
    let digest = sha256(&concatenated);
    out.extend((digest.len() as u16).to_be_bytes());
    out.extend(digest);
    out
}

/// The fake's PCR record: little-endian u32 index and the 32-byte value, repeated.
pub fn pcr_record(pcrs: &BTreeMap<u32, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for index in QUOTED_PCRS {
        out.extend(index.to_le_bytes());
        out.extend(pcrs.get(&index).expect("every quoted PCR has a value"));
    }
    out
}

// ---------------------------------------------------------------------------------------
// The CA and its NPUs.

/// A test NPU vendor CA (root and intermediate) and the IAK it certified.
pub struct NpuCa {
    root: Vec<u8>,
    intermediate: Vec<u8>,
    iak_key: Vec<u8>,
    iak_cert: Vec<u8>,
}

impl Default for NpuCa {
    fn default() -> Self {
        Self::new()
    }
}

impl NpuCa {
    /// New keys throughout: two `NpuCa`s have the same names but do not trust each other.
    pub fn new() -> NpuCa {
        let root_key = new_key();
        let intermediate_key = new_key();
        let iak_key = new_key();
        let (root_name, intermediate_name) = ("Test NPU Root CA", "Test NPU IAK CA");
        let root = certificate(
            root_name,
            root_name,
            &root_key,
            &root_key,
            (1, CA_NOT_BEFORE),
            true,
        );
        let intermediate = certificate(
            root_name,
            intermediate_name,
            &intermediate_key,
            &root_key,
            (2, CA_NOT_BEFORE),
            true,
        );
        let iak_cert = certificate(
            intermediate_name,
            "Ascend NPU IAK",
            &iak_key,
            &intermediate_key,
            (0x1234_5678, IAK_NOT_BEFORE),
            false,
        );
        NpuCa {
            root,
            intermediate,
            iak_key,
            iak_cert,
        }
    }

    /// The IAK certificate, DER.
    pub fn iak_certificate(&self) -> &[u8] {
        &self.iak_cert
    }

    /// Writes the root and intermediate as `root.der` and `intermediate.der` into `dir` (a
    /// directory for `vigil serve --npu-ca-dir` or `AscendRoots::load_dir`).
    pub fn write_ca_dir(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for (file, der) in [
            ("root.der", &self.root),
            ("intermediate.der", &self.intermediate),
        ] {
            std::fs::write(dir.join(file), der).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }

    /// Writes into `dir` (the fake's `FAKE_DCMI_ATTEST_DIR`) what NPUs `0..count` answer
    /// `nonce` with: the IAK certificate `iak.der`, and per NPU its quote over
    /// `challenge_for(nonce, N)`, signature, PCRs, boot log and IMA list.
    pub fn prepare(&self, dir: &Path, nonce: &[u8], count: u32) {
        for index in 0..count {
            self.prepare_npu(dir, nonce, index);
        }
    }

    /// Writes `iak.der` and NPU `index`'s files (named with logic id `index`, see the module
    /// documentation) answering `nonce`. Called after [`NpuCa::prepare`] with another nonce,
    /// it makes that one NPU answer another challenge.
    pub fn prepare_npu(&self, dir: &Path, nonce: &[u8], index: u32) {
        let challenge = vigil_verifier::evidence::ascend::challenge_for(nonce, index);
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let (boot, mut pcrs) = boot_log(index);
        let (ima, pcr10) = ima_list(&pcrs);
        pcrs.insert(10, pcr10);
        let attest = quote(&challenge, &pcrs);
        let signature = self.sign(&attest);
        for (file, bytes) in [
            ("iak.der".to_owned(), self.iak_cert.clone()),
            (format!("quote-{index}.bin"), attest),
            (format!("signature-{index}.bin"), signature),
            (format!("pcrs-{index}.bin"), pcr_record(&pcrs)),
            (format!("boot-{index}.log"), boot),
            (format!("ima-{index}.log"), ima),
        ] {
            std::fs::write(dir.join(&file), bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }

    /// TPMT_SIGNATURE (TPM_ALG_ECDSA, SHA-256, r and s) over `message` with the IAK.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let fixed = signer(&self.iak_key, &signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .sign(&SystemRandom::new(), message)
            .expect("sign quote");
        let (r, s) = fixed.as_ref().split_at(32);
        let mut out = Vec::new();
        out.extend(0x0018u16.to_be_bytes());
        out.extend(0x000bu16.to_be_bytes());
        for half in [r, s] {
            out.extend((half.len() as u16).to_be_bytes());
            out.extend(half);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_verifier::evidence::ascend::{AscendRoots, challenge_for, verify_evidence_bytes};

    /// What the attester would send for NPU `index` (GTA's JSON, as `attester/src/dcmi.rs`
    /// builds it), from the files `prepare` wrote.
    fn evidence_json(dir: &Path, index: u32) -> Vec<u8> {
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let b64 = vigil_audit::b64::encode;
        let pcrs: Vec<serde_json::Value> = read(&format!("pcrs-{index}.bin"))
            .chunks_exact(36)
            .map(|pair| {
                let (i, value) = pair.split_at(4);
                serde_json::json!({
                    "pcr_index": u32::from_le_bytes(i.try_into().unwrap()),
                    "pcr_value": hex::encode(value),
                })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "ak_cert": b64(&read("iak.der")),
            "quote": {
                "quote_data": b64(&read(&format!("quote-{index}.bin"))),
                "signature": b64(&read(&format!("signature-{index}.bin"))),
            },
            "pcrs": {"hash_alg": "sha256", "pcr_values": pcrs},
            "logs": [
                {"log_type": "boot_measurement", "log_data": b64(&read(&format!("boot-{index}.log")))},
                {"log_type": "runtime_measurement", "log_data": b64(&read(&format!("ima-{index}.log")))},
            ],
        }))
        .unwrap()
    }

    #[test]
    fn prepared_npus_verify_for_their_own_challenge_only() {
        let ca = NpuCa::new();
        let dir = crate::TempDir::new("npu-sim");
        ca.write_ca_dir(&dir.join("ca"));
        let roots = AscendRoots::load_dir(&dir.join("ca")).unwrap();
        assert_eq!((roots.root_count(), roots.intermediate_count()), (1, 1));
        let nonce = [0x11u8; 32];
        ca.prepare(&dir.join("npus"), &nonce, 2);
        let at = IAK_NOT_BEFORE + 86_400;
        for index in 0..2 {
            let json = evidence_json(&dir.join("npus"), index);
            let result = verify_evidence_bytes(&json, &roots, &challenge_for(&nonce, index), at);
            assert!(result.passed(), "{}", result.render_text());
            let other = verify_evidence_bytes(&json, &roots, &challenge_for(&nonce, 1 - index), at);
            let failed: Vec<&str> = other
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.name.as_str())
                .collect();
            assert_eq!(failed, ["npu.quote.qualifying_data"]);
        }
        let foreign = NpuCa::new();
        foreign.write_ca_dir(&dir.join("foreign"));
        let roots = AscendRoots::load_dir(&dir.join("foreign")).unwrap();
        let result = verify_evidence_bytes(
            &evidence_json(&dir.join("npus"), 0),
            &roots,
            &challenge_for(&nonce, 0),
            at,
        );
        assert!(!result.check("npu.iak_chain").unwrap().passed);
    }
}
