//! Huawei Ascend NPU evidence (GTA's JSON format), verified offline: `vigil npu verify` and
//! `vigil_verifier::evidence::ascend`. Everything is made here: a CA hierarchy (certificates
//! written in DER by hand, signed with ring), an IAK, TPMS_ATTEST quotes signed with it, a
//! TCG event log and an IMA list. Each check is shown to fail on the tampering it exists for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value as Json, json};
use vigil_verifier::evidence::ascend::{
    ASCEND_CLAIMS, AscendError, AscendRoots, MAX_EVIDENCE_BYTES, challenge_for, parse_evidence,
    verify_evidence, verify_evidence_bytes,
};
use vigil_verifier::report::Verdict;

// ---------------------------------------------------------------------------------------
// Time.

/// 2020-01-01, 2024-01-01, 2025-06-01, 2030-01-01, 2031-01-01, 2045-01-01 (UTC).
const Y2020: i64 = 1_577_836_800;
const Y2024: i64 = 1_704_067_200;
const AT: i64 = 1_748_736_000;
const Y2030: i64 = 1_893_456_000;
const Y2031: i64 = 1_924_992_000;
const Y2045: i64 = 2_366_841_600;

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

fn uint(value: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = value.iter().copied().skip_while(|b| *b == 0).collect();
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
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];

fn name(organization: &str, common_name: &str) -> Vec<u8> {
    let rdn =
        |oid: &[u8], value: &str| tlv(0x31, &seq(&[tlv(0x06, oid), tlv(0x0c, value.as_bytes())]));
    seq(&[rdn(OID_O, organization), rdn(OID_CN, common_name)])
}

fn time(unix: i64) -> Vec<u8> {
    // "YYYY-MM-DDTHH:MM:SSZ" → UTCTime (before 2050) or GeneralizedTime.
    let text = vigil_verifier::report::format_unix_utc(unix);
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let year: u32 = digits[..4].parse().unwrap();
    if year < 2050 {
        tlv(0x17, format!("{}Z", &digits[2..]).as_bytes())
    } else {
        tlv(0x18, format!("{digits}Z").as_bytes())
    }
}

fn ec_spki(point: &[u8]) -> Vec<u8> {
    seq(&[
        seq(&[tlv(0x06, OID_EC_PUBLIC_KEY), tlv(0x06, OID_P256)]),
        bit_string(point),
    ])
}

fn rsa_spki(rsa_public_key_der: &[u8]) -> Vec<u8> {
    seq(&[
        seq(&[tlv(0x06, OID_RSA), tlv(0x05, &[])]),
        bit_string(rsa_public_key_der),
    ])
}

// ---------------------------------------------------------------------------------------
// Keys and certificates.

fn ec_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap()
}

/// The same key, for the fixed-width (r || s) signatures TPMT_SIGNATURE carries.
fn fixed_signer(key: &Pkcs8Key) -> EcdsaKeyPair {
    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &key.pkcs8).unwrap()
}

struct Pkcs8Key {
    pkcs8: Vec<u8>,
    asn1: EcdsaKeyPair,
}

fn pkcs8_key() -> Pkcs8Key {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .unwrap()
        .as_ref()
        .to_vec();
    let asn1 =
        EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8).unwrap();
    Pkcs8Key { pkcs8, asn1 }
}

struct CertSpec<'a> {
    issuer: &'a [u8],
    subject: &'a [u8],
    spki: Vec<u8>,
    serial: u64,
    not_before: i64,
    not_after: i64,
    ca: bool,
}

fn certificate(spec: &CertSpec<'_>, issuer_key: &EcdsaKeyPair) -> Vec<u8> {
    let algorithm = seq(&[tlv(0x06, OID_ECDSA_SHA256)]);
    let mut parts = vec![
        tlv(0xa0, &uint(&[2])),
        uint(&spec.serial.to_be_bytes()),
        algorithm.clone(),
        spec.issuer.to_vec(),
        seq(&[time(spec.not_before), time(spec.not_after)]),
        spec.subject.to_vec(),
        spec.spki.clone(),
    ];
    if spec.ca {
        let basic_constraints = seq(&[tlv(0x01, &[0xff])]);
        let extension = seq(&[
            tlv(0x06, OID_BASIC_CONSTRAINTS),
            tlv(0x01, &[0xff]),
            tlv(0x04, &basic_constraints),
        ]);
        parts.push(tlv(0xa3, &seq(&[extension])));
    }
    let tbs = seq(&parts);
    let signature = issuer_key.sign(&SystemRandom::new(), &tbs).unwrap();
    seq(&[tbs, algorithm, bit_string(signature.as_ref())])
}

/// A root CA and an intermediate under it, both P-256, both with the same names in every
/// hierarchy made here (a foreign hierarchy differs only by its keys).
struct Hierarchy {
    root: Vec<u8>,
    intermediate: Vec<u8>,
    intermediate_key: EcdsaKeyPair,
}

const VENDOR: &str = "Vigil Test NPU Vendor";

fn hierarchy() -> Hierarchy {
    let root_key = ec_key();
    let root_name = name(VENDOR, "Test NPU Root CA");
    let root = certificate(
        &CertSpec {
            issuer: &root_name,
            subject: &root_name,
            spki: ec_spki(root_key.public_key().as_ref()),
            serial: 1,
            not_before: Y2020,
            not_after: Y2045,
            ca: true,
        },
        &root_key,
    );
    let intermediate_key = ec_key();
    let intermediate = certificate(
        &CertSpec {
            issuer: &root_name,
            subject: &name(VENDOR, "Test NPU IAK CA"),
            spki: ec_spki(intermediate_key.public_key().as_ref()),
            serial: 2,
            not_before: Y2020,
            not_after: Y2045,
            ca: true,
        },
        &root_key,
    );
    Hierarchy {
        root,
        intermediate,
        intermediate_key,
    }
}

enum IakKey {
    Ecc(Pkcs8Key),
    Rsa(RsaKeyPair),
}

struct Iak {
    key: IakKey,
    cert: Vec<u8>,
}

fn issue_iak(ca: &Hierarchy, key: IakKey, not_after: i64) -> Iak {
    let spki = match &key {
        IakKey::Ecc(k) => ec_spki(k.asn1.public_key().as_ref()),
        IakKey::Rsa(k) => rsa_spki(k.public_key().as_ref()),
    };
    let cert = certificate(
        &CertSpec {
            issuer: &name(VENDOR, "Test NPU IAK CA"),
            subject: &name(VENDOR, "NPU 0 IAK"),
            spki,
            serial: 0x1234_5678,
            not_before: Y2024,
            not_after,
            ca: false,
        },
        &ca.intermediate_key,
    );
    Iak { key, cert }
}

fn ecc_iak(ca: &Hierarchy) -> Iak {
    issue_iak(ca, IakKey::Ecc(pkcs8_key()), Y2030)
}

fn rsa_iak(ca: &Hierarchy) -> Iak {
    let pk8 = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rsa2048-test-only.pk8"),
    )
    .unwrap();
    issue_iak(
        ca,
        IakKey::Rsa(RsaKeyPair::from_pkcs8(&pk8).unwrap()),
        Y2030,
    )
}

fn ca_dir(label: &str, certs: &[&[u8]]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "ascend-{label}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, der) in certs.iter().enumerate() {
        std::fs::write(dir.join(format!("ca{i}.der")), der).unwrap();
    }
    dir
}

// ---------------------------------------------------------------------------------------
// The NPU's measurements: a boot log (PCRs 0-3), an IMA list (PCR 10).

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

fn extend(pcr: &mut Vec<u8>, digest: &[u8]) {
    *pcr = sha256(&[pcr.as_slice(), digest].concat());
}

/// A crypto-agile TCG event log with one SHA-256 bank, and the PCR values it produces.
fn boot_log() -> (Vec<u8>, BTreeMap<u32, Vec<u8>>) {
    let mut spec = b"Spec ID Event03\0".to_vec();
    spec.extend(0u32.to_le_bytes());
    spec.extend([0, 2, 0, 2]);
    spec.extend(1u32.to_le_bytes());
    spec.extend(0x000bu16.to_le_bytes());
    spec.extend(32u16.to_le_bytes());
    spec.push(0);
    let mut log = Vec::new();
    log.extend(0u32.to_le_bytes());
    log.extend(3u32.to_le_bytes());
    log.extend([0u8; 20]);
    log.extend((spec.len() as u32).to_le_bytes());
    log.extend(spec);
    let mut pcrs: BTreeMap<u32, Vec<u8>> = (0..8).map(|i| (i, vec![0u8; 32])).collect();
    let events: [(u32, u32, &[u8]); 5] = [
        (0, 0x0000_0008, b"NPU BSBC 1.0"), // EV_S_CRTM_VERSION
        (0, 0x0000_000d, b"xloader"),      // EV_IPL
        (1, 0x0000_000d, b"UEFI firmware"),
        (2, 0x0000_000d, b"TEE OS"),
        (3, 0x0000_000d, b"NPU kernel Image"),
    ];
    for (pcr, event_type, data) in events {
        let digest = sha256(data);
        log.extend(pcr.to_le_bytes());
        log.extend(event_type.to_le_bytes());
        log.extend(1u32.to_le_bytes());
        log.extend(0x000bu16.to_le_bytes());
        log.extend(&digest);
        log.extend((data.len() as u32).to_le_bytes());
        log.extend(data);
        extend(pcrs.get_mut(&pcr).unwrap(), &digest);
    }
    (log, pcrs)
}

/// One binary `ima-ng` entry with a SHA-256 template hash (a per-bank list, as GTA's), and the
/// template hash.
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

/// The IMA list (boot_aggregate over the quoted PCRs 0-7, then two files) and PCR 10.
fn ima_list(boot_pcrs: &BTreeMap<u32, Vec<u8>>) -> (Vec<u8>, Vec<u8>) {
    let aggregate = vigil_ima::boot_aggregates(vigil_ima::HashAlg::Sha256, boot_pcrs)
        .into_iter()
        .next()
        .unwrap();
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

// ---------------------------------------------------------------------------------------
// Quotes.

const QUOTED: [u32; 9] = [0, 1, 2, 3, 4, 5, 6, 7, 10];

/// TPMS_ATTEST of type QUOTE over sha256 PCRs `QUOTED` with these values.
fn attest(challenge: &[u8], pcrs: &BTreeMap<u32, Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xff54_4347u32.to_be_bytes());
    out.extend(0x8018u16.to_be_bytes());
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
    out.extend(1u32.to_be_bytes());
    out.extend(0x000bu16.to_be_bytes());
    out.push(3);
    let mut bitmap = [0u8; 3];
    for pcr in QUOTED {
        bitmap[(pcr / 8) as usize] |= 1 << (pcr % 8);
    }
    out.extend(bitmap);
    let concatenated: Vec<u8> = QUOTED.iter().flat_map(|i| pcrs[i].clone()).collect();
    let digest = sha256(&concatenated);
    out.extend((digest.len() as u16).to_be_bytes());
    out.extend(digest);
    out
}

/// TPMT_SIGNATURE over `message` with the IAK.
fn sign(iak: &Iak, message: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    let mut out = Vec::new();
    match &iak.key {
        IakKey::Ecc(key) => {
            let fixed = fixed_signer(key).sign(&rng, message).unwrap();
            let (r, s) = fixed.as_ref().split_at(32);
            out.extend(0x0018u16.to_be_bytes());
            out.extend(0x000bu16.to_be_bytes());
            for half in [r, s] {
                out.extend((half.len() as u16).to_be_bytes());
                out.extend(half);
            }
        }
        IakKey::Rsa(key) => {
            let mut sig = vec![0u8; key.public_modulus_len()];
            key.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                .unwrap();
            out.extend(0x0014u16.to_be_bytes());
            out.extend(0x000bu16.to_be_bytes());
            out.extend((sig.len() as u16).to_be_bytes());
            out.extend(sig);
        }
    }
    out
}

fn b64(data: &[u8]) -> String {
    vigil_audit::b64::encode(data)
}

/// Valid evidence from `iak` for `challenge`, in GTA's encodings.
struct Made {
    json: Json,
    quote: Vec<u8>,
    boot_log: Vec<u8>,
    ima_list: Vec<u8>,
}

fn make_evidence(iak: &Iak, challenge: &[u8]) -> Made {
    let (boot_log, mut pcrs) = boot_log();
    let (ima_list, pcr10) = ima_list(&pcrs);
    pcrs.insert(10, pcr10);
    let quote = attest(challenge, &pcrs);
    let signature = sign(iak, &quote);
    let pcr_values: Vec<Json> = pcrs
        .iter()
        .map(|(i, v)| json!({"pcr_index": i, "pcr_value": hex::encode(v)}))
        .collect();
    let json = json!({
        "ak_cert": b64(&iak.cert),
        "quote": {"quote_data": b64(&quote), "signature": b64(&signature)},
        "pcrs": {"hash_alg": "sha256", "pcr_values": pcr_values},
        "logs": [
            {"log_type": "boot_measurement", "log_data": b64(&boot_log)},
            {"log_type": "runtime_measurement", "log_data": b64(&ima_list)},
        ],
    });
    Made {
        json,
        quote,
        boot_log,
        ima_list,
    }
}

const NONCE: &str = "5eed5eed5eed5eed5eed5eed5eed5eed00112233445566778899aabbccddeeff";

fn nonce() -> Vec<u8> {
    hex::decode(NONCE).unwrap()
}

fn roots_of(ca: &Hierarchy) -> AscendRoots {
    let mut roots = AscendRoots::empty();
    roots.add_der(ca.root.clone()).unwrap();
    roots.add_der(ca.intermediate.clone()).unwrap();
    roots
}

fn verify_json(json: &Json, roots: &AscendRoots, challenge: &[u8], at: i64) -> Vec<(String, bool)> {
    let bytes = serde_json::to_vec(json).unwrap();
    let result = verify_evidence_bytes(&bytes, roots, challenge, at);
    result
        .checks
        .iter()
        .map(|c| (c.name.clone(), c.passed))
        .collect()
}

fn failed(json: &Json, roots: &AscendRoots, challenge: &[u8], at: i64) -> Vec<String> {
    verify_json(json, roots, challenge, at)
        .into_iter()
        .filter(|(_, passed)| !passed)
        .map(|(name, _)| name)
        .collect()
}

// ---------------------------------------------------------------------------------------
// The CLI.

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn vigil(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn write_evidence(dir: &Path, name: &str, json: &Json) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(json).unwrap()).unwrap();
    path
}

fn npu_verify(evidence: &Path, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "npu",
        "verify",
        "--evidence",
        evidence.to_str().unwrap(),
        "--ca-dir",
        dir.to_str().unwrap(),
    ];
    if !extra.contains(&"--at") {
        args.extend(["--at", "2025-06-01T00:00:00Z"]);
    }
    args.extend_from_slice(extra);
    vigil(&args)
}

/// The failed checks named in the human table (lines with a cross).
fn crossed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("✗ "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn valid_evidence_passes_the_cli_in_text_and_json() {
    let ca = hierarchy();
    let iak = ecc_iak(&ca);
    let made = make_evidence(&iak, &challenge_for(&nonce(), 0));
    let dir = ca_dir("valid", &[&ca.root, &ca.intermediate]);
    let evidence = write_evidence(&dir, "evidence.json", &made.json);
    // The evidence file sits in the CA directory too: only certificate extensions are read.
    let run = npu_verify(&evidence, &dir, &["--nonce", NONCE]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(": PASS"), "{}", run.stdout);
    for check in [
        "npu.evidence",
        "npu.iak_chain",
        "npu.quote.signature",
        "npu.quote.qualifying_data",
        "npu.quote.pcr_digest",
        "npu.boot_log",
        "npu.ima_log",
    ] {
        assert!(
            run.stdout.contains(&format!("✓ {check}")),
            "{check} not passed:\n{}",
            run.stdout
        );
    }
    assert!(crossed(&run.stdout).is_empty(), "{}", run.stdout);

    let run = npu_verify(&evidence, &dir, &["--nonce", NONCE, "--json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let result: Json = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(result["verdict"], "pass");
    assert_eq!(result["checks"].as_array().unwrap().len(), 7);
    let claims = result["claims"].as_array().unwrap();
    let claim = |name: &str| {
        claims
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no claim {name}: {claims:?}"))
    };
    assert_eq!(claim("npu.quote_verified")["value"]["value"], true);
    assert_eq!(claim("npu.iak.serial")["value"]["value"], "12345678");
    assert_eq!(claim("npu.ima.boot_aggregate")["value"]["value"], "matches");
    assert_eq!(claim("npu.ima.entries")["value"]["value"], 3);
    assert_eq!(claim("npu.boot_log")["value"]["value"], "replayed");
    assert_eq!(claim("npu.pcr.sha256.10")["trust"], "verified");
    assert_eq!(
        claim("npu.quote.firmware_version")["value"]["value"],
        "0x0001000200030004"
    );
    // The same evidence answers only the challenge for its own device index.
    let run = npu_verify(&evidence, &dir, &["--nonce", NONCE, "--index", "1"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(crossed(&run.stdout), ["npu.quote.qualifying_data"]);
}

#[test]
fn challenge_given_directly_and_rsa_iak() {
    let ca = hierarchy();
    let iak = rsa_iak(&ca);
    let challenge = [0x42u8; 32];
    let made = make_evidence(&iak, &challenge);
    let dir = ca_dir("rsa", &[&ca.root, &ca.intermediate]);
    let evidence = write_evidence(&dir, "evidence.json", &made.json);
    let run = npu_verify(&evidence, &dir, &["--challenge", &hex::encode(challenge)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("RSASSA-PKCS1-v1_5 with SHA256"),
        "{}",
        run.stdout
    );
}

#[test]
fn wrong_challenge_fails_qualifying_data_only() {
    let ca = hierarchy();
    let iak = ecc_iak(&ca);
    let made = make_evidence(&iak, &challenge_for(&nonce(), 0));
    let dir = ca_dir("challenge", &[&ca.root, &ca.intermediate]);
    let evidence = write_evidence(&dir, "evidence.json", &made.json);
    let other_nonce = "00".repeat(32);
    let run = npu_verify(&evidence, &dir, &["--nonce", &other_nonce]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(crossed(&run.stdout), ["npu.quote.qualifying_data"]);
    assert!(run.stdout.contains("does not answer this challenge"));
    // The nonce itself is not the challenge: GTA-style direct use of the nonce fails too.
    let run = npu_verify(&evidence, &dir, &["--challenge", NONCE]);
    assert_eq!(crossed(&run.stdout), ["npu.quote.qualifying_data"]);
}

#[test]
fn iak_from_a_foreign_ca_with_the_same_names_fails_the_chain() {
    let ca = hierarchy();
    let foreign = hierarchy();
    let iak = ecc_iak(&foreign);
    let made = make_evidence(&iak, &challenge_for(&nonce(), 0));
    let dir = ca_dir("foreign", &[&ca.root, &ca.intermediate]);
    let evidence = write_evidence(&dir, "evidence.json", &made.json);
    let run = npu_verify(&evidence, &dir, &["--nonce", NONCE]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(crossed(&run.stdout), ["npu.iak_chain"]);
    assert!(
        run.stdout.contains("does not verify with the key"),
        "{}",
        run.stdout
    );
    // Claims from an untrusted IAK are not verified.
    let run = npu_verify(&evidence, &dir, &["--nonce", NONCE, "--json"]);
    let result: Json = serde_json::from_str(&run.stdout).unwrap();
    let pcr = result["claims"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "npu.pcr.sha256.0")
        .unwrap();
    assert_eq!(pcr["trust"], "unproven");
    // Only the root, without the intermediate: no issuer.
    let dir = ca_dir("root-only", &[&ca.root]);
    let made = make_evidence(&ecc_iak(&ca), &challenge_for(&nonce(), 0));
    let evidence = write_evidence(&dir, "evidence.json", &made.json);
    let run = npu_verify(&evidence, &dir, &["--nonce", NONCE]);
    assert_eq!(crossed(&run.stdout), ["npu.iak_chain"]);
    assert!(run.stdout.contains("no issuer"), "{}", run.stdout);
}

#[test]
fn expired_iak_fails_the_chain_at_a_later_time() {
    let ca = hierarchy();
    let iak = ecc_iak(&ca); // valid 2024 .. 2030
    let made = make_evidence(&iak, &challenge_for(&nonce(), 0));
    let dir = ca_dir("expired", &[&ca.root, &ca.intermediate]);
    let evidence = write_evidence(&dir, "evidence.json", &made.json);
    let run = npu_verify(
        &evidence,
        &dir,
        &["--nonce", NONCE, "--at", "2031-01-01T00:00:00Z"],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(crossed(&run.stdout), ["npu.iak_chain"]);
    assert!(
        run.stdout.contains("is not valid at 2031-01-01T00:00:00Z"),
        "{}",
        run.stdout
    );
    // Before it was issued, too (Unix seconds accepted).
    let run = npu_verify(
        &evidence,
        &dir,
        &["--nonce", NONCE, "--at", &Y2020.to_string()],
    );
    assert_eq!(crossed(&run.stdout), ["npu.iak_chain"]);
    let roots = roots_of(&ca);
    assert_eq!(
        failed(&made.json, &roots, &challenge_for(&nonce(), 0), Y2031),
        ["npu.iak_chain"]
    );
}

#[test]
fn flipped_quote_byte_fails_the_signature() {
    let ca = hierarchy();
    let iak = ecc_iak(&ca);
    let challenge = challenge_for(&nonce(), 0);
    let made = make_evidence(&iak, &challenge);
    let roots = roots_of(&ca);
    assert!(failed(&made.json, &roots, &challenge, AT).is_empty());
    // Byte 80 lies in clockInfo.clock: the structure still decodes.
    let mut quote = made.quote.clone();
    quote[80] ^= 0x01;
    let mut json = made.json.clone();
    json["quote"]["quote_data"] = json!(b64(&quote));
    // The logs are then compared with nothing: no PCR value is proven.
    let all_but_logs = ["npu.quote.signature", "npu.boot_log", "npu.ima_log"];
    assert_eq!(failed(&json, &roots, &challenge, AT), all_but_logs);
    // A flipped signature byte, likewise.
    let mut json = made.json.clone();
    let mut signature =
        vigil_audit::b64::decode(json["quote"]["signature"].as_str().unwrap()).unwrap();
    let last = signature.len() - 1;
    signature[last] ^= 0x80;
    json["quote"]["signature"] = json!(b64(&signature));
    assert_eq!(failed(&json, &roots, &challenge, AT), all_but_logs);
    // Signed by another key than the certificate's (an RSA key, an ECC certificate).
    let mut json = made.json.clone();
    json["quote"]["signature"] = json!(b64(&sign(&rsa_iak(&ca), &made.quote)));
    assert_eq!(failed(&json, &roots, &challenge, AT), all_but_logs);
    // Not a quote (another attestation type): the signature check names it.
    let mut quote = made.quote.clone();
    quote[5] = 0x17;
    let mut json = made.json.clone();
    json["quote"]["quote_data"] = json!(b64(&quote));
    let failures = failed(&json, &roots, &challenge, AT);
    assert!(
        failures.contains(&"npu.quote.signature".to_string()),
        "{failures:?}"
    );
}

#[test]
fn pcr_values_must_match_the_quote_exactly() {
    let ca = hierarchy();
    let iak = ecc_iak(&ca);
    let challenge = challenge_for(&nonce(), 0);
    let made = make_evidence(&iak, &challenge);
    let roots = roots_of(&ca);
    // A changed value.
    let mut json = made.json.clone();
    json["pcrs"]["pcr_values"][4]["pcr_value"] = json!("11".repeat(32));
    let failures = failed(&json, &roots, &challenge, AT);
    assert_eq!(failures[0], "npu.quote.pcr_digest", "{failures:?}");
    // Logs are then not compared with unproven values.
    assert!(failures.contains(&"npu.boot_log".to_string()));
    assert!(failures.contains(&"npu.ima_log".to_string()));
    // A value outside the quote's selection is refused, not ignored.
    let mut json = made.json.clone();
    json["pcrs"]["pcr_values"]
        .as_array_mut()
        .unwrap()
        .push(json!({"pcr_index": 15, "pcr_value": "00".repeat(32)}));
    let bytes = serde_json::to_vec(&json).unwrap();
    let result = verify_evidence_bytes(&bytes, &roots, &challenge, AT);
    let check = result.check("npu.quote.pcr_digest").unwrap();
    assert!(!check.passed);
    assert!(
        check.detail.contains("sha256:15") && check.detail.contains("not in the quote's selection")
    );
    // A quoted value left out.
    let mut json = made.json.clone();
    json["pcrs"]["pcr_values"].as_array_mut().unwrap().remove(0);
    assert!(failed(&json, &roots, &challenge, AT).contains(&"npu.quote.pcr_digest".to_string()));
    // Values said to be of another bank than the quoted one. (64 hex digits are not a
    // SHA-384 digest in hex, but they are one in base64: read so, they are not quoted.)
    let mut json = made.json.clone();
    json["pcrs"]["hash_alg"] = json!("sha384");
    let failures = failed(&json, &roots, &challenge, AT);
    assert_eq!(failures[0], "npu.quote.pcr_digest", "{failures:?}");
    json["pcrs"]["hash_alg"] = json!("sha512");
    let error = parse_evidence(&serde_json::to_vec(&json).unwrap()).unwrap_err();
    assert!(
        error.to_string().contains("64-byte sha512 digest"),
        "{error}"
    );
}

#[test]
fn tampered_boot_log_fails_the_boot_log_check() {
    let ca = hierarchy();
    let iak = ecc_iak(&ca);
    let challenge = challenge_for(&nonce(), 0);
    let made = make_evidence(&iak, &challenge);
    let roots = roots_of(&ca);
    // The digest of the last event (PCR 3) changed: the signed PCR 3 no longer replays.
    let mut log = made.boot_log.clone();
    let digest_at = log.len() - b"NPU kernel Image".len() - 4 - 32;
    log[digest_at] ^= 0xff;
    let mut json = made.json.clone();
    json["logs"][0]["log_data"] = json!(b64(&log));
    let bytes = serde_json::to_vec(&json).unwrap();
    let result = verify_evidence_bytes(&bytes, &roots, &challenge, AT);
    let failures: Vec<&str> = result
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failures, ["npu.boot_log"]);
    let detail = &result.check("npu.boot_log").unwrap().detail;
    assert!(detail.contains("sha256:3"), "{detail}");
    assert_eq!(
        result.claim("npu.boot_log").unwrap().value,
        Some(vigil_verifier::claims::Value::Text("failed".into()))
    );
    // A truncated log does not parse.
    let mut json = made.json.clone();
    json["logs"][0]["log_data"] = json!(b64(&made.boot_log[..made.boot_log.len() - 5]));
    assert_eq!(failed(&json, &roots, &challenge, AT), ["npu.boot_log"]);
    // The first event moved to a PCR the quote does not cover: PCR 0 no longer replays.
    let mut other = made.boot_log.clone();
    let first_event = 32 + 16 + 17; // after the Spec ID header
    other[first_event] = 20;
    let mut json = made.json.clone();
    json["logs"][0]["log_data"] = json!(b64(&other));
    assert_eq!(failed(&json, &roots, &challenge, AT), ["npu.boot_log"]);
}

#[test]
fn tampered_ima_list_fails_the_ima_check() {
    let ca = hierarchy();
    let iak = ecc_iak(&ca);
    let challenge = challenge_for(&nonce(), 0);
    let made = make_evidence(&iak, &challenge);
    let roots = roots_of(&ca);
    // The last byte of the last file digest: the entry's template hash no longer matches.
    let mut list = made.ima_list.clone();
    let at = list.len() - b"/usr/lib64/libascend_hal.so\0".len() - 4 - 1;
    list[at] ^= 0x01;
    let mut json = made.json.clone();
    json["logs"][1]["log_data"] = json!(b64(&list));
    let bytes = serde_json::to_vec(&json).unwrap();
    let result = verify_evidence_bytes(&bytes, &roots, &challenge, AT);
    let failures: Vec<&str> = result
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failures, ["npu.ima_log"]);
    assert!(
        result
            .check("npu.ima_log")
            .unwrap()
            .detail
            .contains("altered"),
        "{}",
        result.check("npu.ima_log").unwrap().detail
    );
    // An entry removed (template hashes intact): no prefix reproduces PCR 10... unless the
    // removed one is the last, which is just a shorter list than the quote; remove the first.
    let (first, _) = ima_entry("boot_aggregate", &[0u8; 32]);
    let mut json = made.json.clone();
    json["logs"][1]["log_data"] = json!(b64(&made.ima_list[first.len()..]));
    assert_eq!(failed(&json, &roots, &challenge, AT), ["npu.ima_log"]);
    // Garbage does not parse.
    let mut json = made.json.clone();
    json["logs"][1]["log_data"] = json!(b64(&[10, 0, 0, 0, 1, 2, 3]));
    assert_eq!(failed(&json, &roots, &challenge, AT), ["npu.ima_log"]);
}

#[test]
fn logs_are_optional_and_said_to_be_absent() {
    let ca = hierarchy();
    let iak = ecc_iak(&ca);
    let challenge = challenge_for(&nonce(), 0);
    let mut made = make_evidence(&iak, &challenge);
    made.json.as_object_mut().unwrap().remove("logs");
    let bytes = serde_json::to_vec(&made.json).unwrap();
    let result = verify_evidence_bytes(&bytes, &roots_of(&ca), &challenge, AT);
    assert_eq!(result.verdict, Verdict::Pass);
    assert!(
        result
            .check("npu.boot_log")
            .unwrap()
            .detail
            .contains("none sent")
    );
    assert_eq!(
        result.claim("npu.ima.log").unwrap().value,
        Some(vigil_verifier::claims::Value::Text("absent".into()))
    );
}

#[test]
fn hex_pem_and_wrapped_encodings_are_accepted() {
    let ca = hierarchy();
    let iak = ecc_iak(&ca);
    let challenge = challenge_for(&nonce(), 0);
    let made = make_evidence(&iak, &challenge);
    let roots = roots_of(&ca);
    let hexify = |json: &mut Json, pointer: &str| {
        let value = json.pointer_mut(pointer).unwrap();
        let bytes = vigil_audit::b64::decode(value.as_str().unwrap()).unwrap();
        *value = json!(hex::encode(bytes));
    };
    let mut json = made.json.clone();
    for pointer in [
        "/ak_cert",
        "/quote/quote_data",
        "/quote/signature",
        "/logs/0/log_data",
        "/logs/1/log_data",
    ] {
        hexify(&mut json, pointer);
    }
    let bytes = serde_json::to_vec(&json).unwrap();
    let evidence = parse_evidence(&bytes).unwrap();
    assert!(
        evidence.encodings.iter().all(|(_, e)| e.starts_with("hex")),
        "{:?}",
        evidence.encodings
    );
    assert!(failed(&json, &roots, &challenge, AT).is_empty());

    // PEM text, and base64 of PEM (what GTA's own tests send).
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        b64(&iak.cert)
    );
    let mut json = made.json.clone();
    json["ak_cert"] = json!(pem);
    assert!(failed(&json, &roots, &challenge, AT).is_empty());
    json["ak_cert"] = json!(b64(pem.as_bytes()));
    assert!(failed(&json, &roots, &challenge, AT).is_empty());
    // Two certificates in the PEM are refused.
    json["ak_cert"] = json!(format!("{pem}{pem}"));
    let error = parse_evidence(&serde_json::to_vec(&json).unwrap()).unwrap_err();
    assert!(error.to_string().contains("exactly one"), "{error}");

    // PCR values in base64; GTA's sample output shape {"evidence": {...}}.
    let mut json = made.json.clone();
    for entry in json["pcrs"]["pcr_values"].as_array_mut().unwrap() {
        let bytes = hex::decode(entry["pcr_value"].as_str().unwrap()).unwrap();
        entry["pcr_value"] = json!(b64(&bytes));
    }
    let wrapped = json!({ "evidence": json });
    assert!(failed(&wrapped, &roots, &challenge, AT).is_empty());
}

#[test]
fn library_claims_and_device_names() {
    let ca = hierarchy();
    let iak = ecc_iak(&ca);
    let challenge = challenge_for(&nonce(), 3);
    let made = make_evidence(&iak, &challenge);
    let evidence = parse_evidence(&serde_json::to_vec(&made.json).unwrap()).unwrap();
    let result = verify_evidence(&evidence, &roots_of(&ca), &challenge, AT);
    assert_eq!(result.verdict, Verdict::Pass, "{}", result.render_text());
    let iak_facts = result.iak.as_ref().unwrap();
    assert!(iak_facts.subject.contains("NPU 0 IAK"));
    assert_eq!(iak_facts.chain.len(), 3);
    let quote = result.quote.as_ref().unwrap();
    assert_eq!((quote.reset_count, quote.restart_count), (7, 2));
    // Every claim name is in ASCEND_CLAIMS.
    for claim in &result.claims {
        assert!(
            ASCEND_CLAIMS
                .iter()
                .any(|(pattern, _)| vigil_verifier::claims::name_matches(pattern, &claim.name)),
            "{} is not listed in ASCEND_CLAIMS",
            claim.name
        );
    }
    let renamed = result.claims_for_device(3);
    assert!(renamed.iter().any(|c| c.name == "npu[3].pcr.sha256.10"));
    assert!(renamed.iter().all(|c| c.name.starts_with("npu[3].")));
}

#[test]
fn malformed_documents_give_clear_errors_never_panics() {
    let ca = hierarchy();
    let iak = ecc_iak(&ca);
    let challenge = challenge_for(&nonce(), 0);
    let made = make_evidence(&iak, &challenge);
    let roots = roots_of(&ca);
    let bytes = serde_json::to_vec(&made.json).unwrap();

    // Truncated anywhere: an error, never a panic, and verify_evidence_bytes fails npu.evidence.
    for end in (0..bytes.len()).step_by(97) {
        assert!(parse_evidence(&bytes[..end]).is_err(), "truncated at {end}");
        let result = verify_evidence_bytes(&bytes[..end], &roots, &challenge, AT);
        assert_eq!(result.verdict, Verdict::Fail);
        assert!(!result.check("npu.evidence").unwrap().passed);
    }
    // Oversized.
    let mut big = vec![b' '; MAX_EVIDENCE_BYTES + 1];
    big[0] = b'{';
    assert!(matches!(
        parse_evidence(&big),
        Err(AscendError::TooLarge { .. })
    ));
    // Garbage and wrong shapes, each naming where.
    let cases: Vec<(Json, &str)> = vec![
        (json!([1, 2, 3]), "(document)"),
        (json!({"quote": {}}), "ak_cert: missing"),
        (
            {
                let mut j = made.json.clone();
                j["ak_cert"] = json!(b64(b"not a certificate"));
                j
            },
            "ak_cert: not an X.509 certificate",
        ),
        (
            {
                let mut j = made.json.clone();
                j["quote"]["quote_data"] = json!("%%%");
                j
            },
            "quote.quote_data: neither base64",
        ),
        (
            {
                let mut j = made.json.clone();
                j["quote"]["signature"] = json!(b64(&[0x00, 0x18, 0x00]));
                j
            },
            "quote.signature",
        ),
        (
            {
                let mut j = made.json.clone();
                j["pcrs"]["pcr_values"][2]["pcr_index"] = json!(24);
                j
            },
            "pcrs.pcr_values[2].pcr_index",
        ),
        (
            {
                let mut j = made.json.clone();
                j["pcrs"]["pcr_values"][1]["pcr_index"] = json!(0);
                j
            },
            "PCR 0 given twice",
        ),
        (
            {
                let mut j = made.json.clone();
                j["pcrs"]["pcr_values"][3]["pcr_value"] = json!("abcd");
                j
            },
            "pcrs.pcr_values[3].pcr_value",
        ),
        (
            {
                let mut j = made.json.clone();
                let entry = j["pcrs"]["pcr_values"][0].clone();
                let list: Vec<Json> = (0..25)
                    .map(|i| {
                        let mut e = entry.clone();
                        e["pcr_index"] = json!(i);
                        e
                    })
                    .collect();
                j["pcrs"]["pcr_values"] = json!(list);
                j
            },
            "25 values (at most 24)",
        ),
        (
            {
                let mut j = made.json.clone();
                j["logs"][1]["log_type"] = json!("dim_measurement");
                j
            },
            "logs[1].log_type: unknown log type",
        ),
        (
            {
                let mut j = made.json.clone();
                j["logs"][1]["log_type"] = json!("boot_measurement");
                j
            },
            "a second boot_measurement log",
        ),
        (
            {
                let mut j = made.json.clone();
                let log = j["logs"][0].clone();
                j["logs"] = json!([log.clone(), log.clone(), log]);
                j
            },
            "3 logs",
        ),
    ];
    for (json, expected) in cases {
        let error = parse_evidence(&serde_json::to_vec(&json).unwrap()).unwrap_err();
        assert!(
            error.to_string().contains(expected),
            "expected {expected:?} in {error}"
        );
    }
    assert!(matches!(
        parse_evidence(b"\x00\xffgarbage"),
        Err(AscendError::Json { .. })
    ));
}

#[test]
fn cli_reports_bad_documents_as_failed_evidence_and_usage_errors_as_2() {
    let ca = hierarchy();
    let dir = ca_dir("cli-errors", &[&ca.root, &ca.intermediate]);
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, b"{\"ak_cert\": \"").unwrap();
    let run = npu_verify(&garbage, &dir, &["--nonce", NONCE]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(crossed(&run.stdout), ["npu.evidence"]);
    assert!(run.stdout.contains("not JSON"), "{}", run.stdout);

    let big = dir.join("big.json");
    std::fs::write(&big, vec![b' '; MAX_EVIDENCE_BYTES + 10]).unwrap();
    let run = npu_verify(&big, &dir, &["--nonce", NONCE]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("exceeds the limit"), "{}", run.stdout);
    std::fs::remove_file(&big).unwrap();

    // Usage and I/O: exit 2.
    let made = make_evidence(&ecc_iak(&ca), &challenge_for(&nonce(), 0));
    let evidence = write_evidence(&dir, "evidence.json", &made.json);
    for (args, message) in [
        (vec!["--nonce", "xyz"], "--nonce: not hex"),
        (vec!["--challenge", "00"], "--challenge must be 32 bytes"),
        (vec!["--nonce", NONCE, "--at", "yesterday"], "--at"),
    ] {
        let run = npu_verify(&evidence, &dir, &args);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    let run = npu_verify(&dir.join("missing.json"), &dir, &["--nonce", NONCE]);
    assert_eq!(run.code, 2);
    let empty = ca_dir("cli-empty", &[]);
    let run = npu_verify(&evidence, &empty, &["--nonce", NONCE]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no self-signed root"), "{}", run.stderr);
    // Neither --nonce nor --challenge: clap's usage error, also 2.
    let run = npu_verify(&evidence, &dir, &[]);
    assert_eq!(run.code, 2);
}
