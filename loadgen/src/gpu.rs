//! Simulated NVIDIA GPUs: a TEST device identity hierarchy shaped like NVIDIA's (root ->
//! provisioner CA -> device identity CA -> attestation leaf carrying the TCG DICE FWID of the
//! firmware), and SPDM 1.1 GET_MEASUREMENTS request/response pairs signed with the leaf's
//! P-384 key for every nonce (DSP0274 layouts; opaque data as NVIDIA firmware fills it).
//!
//! One device key is shared by every simulated GPU to keep setup short; each report is still
//! signed per nonce, which is the cost that matters to the verifier. The test root is written
//! to `DIR/roots` for `vigil serve --gpu-roots`; NVIDIA's pinned roots stay the default there.

use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};
use vigil_proto::v1::GpuEvidence;

/// The driver and VBIOS versions every simulated GPU reports (and the baseline allows).
pub const DRIVER_VERSION: &str = "550.90.07";
/// VBIOS 96.00.9F.00.01 as the firmware encodes it: b3.b2.b1.b0.b4, zero padded to 8 bytes.
const VBIOS_RAW: [u8; 8] = [0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0];
pub const VBIOS_VERSION: &str = "96.00.9F.00.01";
/// Measurement blocks in a report (an H100 reports 64).
const BLOCKS: u8 = 64;

const SPDM_VERSION_11: u8 = 0x11;
const GET_MEASUREMENTS: u8 = 0xe0;
const MEASUREMENTS: u8 = 0x60;
/// Param1 of the request: a signature is requested.
const ATTR_SIGNATURE_REQUESTED: u8 = 0x01;
/// Param2 of the request: all measurement blocks.
const ALL_MEASUREMENTS: u8 = 0xff;
/// DMTF measurement specification bit.
const SPEC_DMTF: u8 = 0x01;

/// TCG DICE TcbInfo extension (2.23.133.5.4.1).
const OID_TCG_DICE_TCB_INFO: [u64; 6] = [2, 23, 133, 5, 4, 1];
const OID_SHA384_DER: [u8; 11] = [
    0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
];

/// Files that keep the device hierarchy between runs.
const DEVICE_KEY_FILE: &str = "device-key.pk8";
const DEVICE_CHAIN_FILE: &str = "device-chain.pem";
const DEVICE_FWID_FILE: &str = "device-fwid.hex";

/// Golden values of the measurement blocks (index 1..=BLOCKS), the same in every run.
fn golden_measurements() -> Vec<[u8; 48]> {
    (1..=BLOCKS)
        .map(|index| {
            let mut value = [0u8; 48];
            let digest = ring::digest::digest(
                &ring::digest::SHA384,
                format!("vigil-loadgen GH100 firmware component {index}").as_bytes(),
            );
            value.copy_from_slice(digest.as_ref());
            value
        })
        .collect()
}

pub struct GpuFleet {
    pub per_host: usize,
    key: EcdsaKeyPair,
    chain_pem: String,
    fwid: [u8; 48],
    /// Golden measurement values by block index (1-based), SHA-384 sized.
    measurements: Vec<[u8; 48]>,
    roots_dir: PathBuf,
    rim_dir: PathBuf,
    rim_roots_dir: PathBuf,
    rng: SystemRandom,
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// DiceTcbInfo ::= SEQUENCE { ..., fwids [6] IMPLICIT SEQUENCE OF FWID } with one SHA-384
/// FWID (TCG DICE Attestation Architecture), the form Hopper device certificates carry.
fn dice_tcb_info(fwid: &[u8]) -> Vec<u8> {
    let mut fwid_seq = OID_SHA384_DER.to_vec();
    fwid_seq.extend_from_slice(&der_tlv(0x04, fwid));
    let fwids = der_tlv(0xa6, &der_tlv(0x30, &fwid_seq));
    let mut content = der_tlv(0x80, b"NVIDIA"); // vendor [0] IMPLICIT UTF8String
    content.extend_from_slice(&der_tlv(0x81, b"GH100")); // model [1]
    content.extend_from_slice(&fwids);
    der_tlv(0x30, &content)
}

fn ca_params(cn: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(86_400)).into();
    params.not_after = (now + std::time::Duration::from_secs(365 * 86_400)).into();
    params
}

fn p384_key() -> Result<rcgen::KeyPair, String> {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
        .map_err(|e| format!("P-384 key: {e}"))
}

impl GpuFleet {
    /// The test hierarchy and RIMs kept in `dir` by an earlier run (so that a verifier
    /// started once with their roots serves many runs), or new ones written there.
    pub fn new(per_host: usize, dir: &Path) -> Result<GpuFleet, String> {
        let key_path = dir.join(DEVICE_KEY_FILE);
        let chain_path = dir.join(DEVICE_CHAIN_FILE);
        let fwid_path = dir.join(DEVICE_FWID_FILE);
        if !(key_path.is_file() && chain_path.is_file() && fwid_path.is_file()) {
            return GpuFleet::create(per_host, dir);
        }
        let read =
            |path: &Path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
        let key =
            crate::crypto::ecdsa_from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &read(&key_path)?)?;
        let chain_pem = String::from_utf8(read(&chain_path)?)
            .map_err(|_| format!("{} is not text", chain_path.display()))?;
        let fwid_hex = String::from_utf8(read(&fwid_path)?).unwrap_or_default();
        let fwid: [u8; 48] = hex::decode(fwid_hex.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| format!("{} is not 48 bytes of hex", fwid_path.display()))?;
        Ok(GpuFleet {
            per_host,
            key,
            chain_pem,
            fwid,
            measurements: golden_measurements(),
            roots_dir: dir.join("roots"),
            rim_dir: dir.join("rims"),
            rim_roots_dir: dir.join("rim-roots"),
            rng: SystemRandom::new(),
        })
    }

    /// Makes the test hierarchy and RIMs and writes them to `dir`.
    fn create(per_host: usize, dir: &Path) -> Result<GpuFleet, String> {
        let rng = SystemRandom::new();
        let mut fwid = [0u8; 48];
        rng.fill(&mut fwid).map_err(|_| "random FWID")?;
        let measurements = golden_measurements();

        let err = |what: &'static str| move |e: rcgen::Error| format!("{what}: {e}");
        let root_key = p384_key()?;
        let root_params = ca_params("vigil-loadgen TEST Device Identity Root (not NVIDIA)");
        let root_cert = root_params
            .self_signed(&root_key)
            .map_err(err("GPU root"))?;
        let root = rcgen::Issuer::new(root_params, root_key);

        let provisioner_key = p384_key()?;
        let provisioner_params = ca_params("vigil-loadgen TEST GH100 Identity Provisioner CA");
        let provisioner_cert = provisioner_params
            .signed_by(&provisioner_key, &root)
            .map_err(err("GPU provisioner CA"))?;
        let provisioner = rcgen::Issuer::new(provisioner_params, provisioner_key);

        let device_ca_key = p384_key()?;
        let device_ca_params = ca_params("vigil-loadgen TEST GH100 A01 FSP BROM");
        let device_ca_cert = device_ca_params
            .signed_by(&device_ca_key, &provisioner)
            .map_err(err("GPU device identity CA"))?;
        let device_ca = rcgen::Issuer::new(device_ca_params, device_ca_key);

        let leaf_key = p384_key()?;
        let mut leaf_params = rcgen::CertificateParams::default();
        leaf_params.distinguished_name = rcgen::DistinguishedName::new();
        leaf_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "vigil-loadgen TEST GH100 A01 FSP RT attestation key",
        );
        leaf_params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        leaf_params.not_before =
            (std::time::SystemTime::now() - std::time::Duration::from_secs(86_400)).into();
        leaf_params.not_after =
            (std::time::SystemTime::now() + std::time::Duration::from_secs(365 * 86_400)).into();
        leaf_params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            &OID_TCG_DICE_TCB_INFO,
            dice_tcb_info(&fwid),
        )];
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &device_ca)
            .map_err(err("GPU attestation leaf"))?;
        let key = crate::crypto::ecdsa_from_pkcs8(
            &ECDSA_P384_SHA384_FIXED_SIGNING,
            &leaf_key.serialize_der(),
        )?;
        let chain_pem = [
            leaf_cert.pem(),
            device_ca_cert.pem(),
            provisioner_cert.pem(),
            root_cert.pem(),
        ]
        .concat();

        let roots_dir = dir.join("roots");
        std::fs::create_dir_all(&roots_dir).map_err(|e| format!("{}: {e}", roots_dir.display()))?;
        for (file, contents) in [
            (DEVICE_KEY_FILE, leaf_key.serialize_der()),
            (DEVICE_CHAIN_FILE, chain_pem.clone().into_bytes()),
            (DEVICE_FWID_FILE, hex::encode(fwid).into_bytes()),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, contents).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let root_path = roots_dir.join("test-device-root.pem");
        std::fs::write(&root_path, root_cert.pem())
            .map_err(|e| format!("{}: {e}", root_path.display()))?;

        // Golden values: blocks 1..=32 belong to the driver RIM, the rest to the VBIOS RIM.
        let signer = crate::rim::RimSigner::new(dir)?;
        let rim_dir = dir.join("rims");
        std::fs::create_dir_all(&rim_dir).map_err(|e| format!("{}: {e}", rim_dir.display()))?;
        for (file, version, edition, driver_part) in [
            ("driver-rim.swidtag", DRIVER_VERSION, "GPU", true),
            ("vbios-rim.swidtag", VBIOS_VERSION, "GPU", false),
        ] {
            let entries: Vec<(u8, [u8; 48], bool)> = measurements
                .iter()
                .enumerate()
                .map(|(i, value)| {
                    // RIM indices count from 0: RIM index i is SPDM block i + 1.
                    let index = i as u8;
                    (index, *value, (index < BLOCKS / 2) == driver_part)
                })
                .collect();
            let tag_id = format!("vigil-loadgen-TEST-GH100-{version}");
            let xml = signer.rim(&tag_id, version, edition, &entries)?;
            let path = rim_dir.join(file);
            std::fs::write(&path, xml).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(GpuFleet {
            per_host,
            key,
            chain_pem,
            fwid,
            measurements,
            roots_dir,
            rim_dir,
            rim_roots_dir: signer.roots_dir.clone(),
            rng,
        })
    }

    /// One report: GET_MEASUREMENTS request (with the verifier's nonce) || MEASUREMENTS
    /// response, signed over both.
    fn report(&self, nonce: &[u8]) -> Result<Vec<u8>, String> {
        let mut report = Vec::with_capacity(4096);
        // Request (DSP0274 10.11.1): version, code, param1, param2, nonce, slot.
        report.extend_from_slice(&[
            SPDM_VERSION_11,
            GET_MEASUREMENTS,
            ATTR_SIGNATURE_REQUESTED,
            ALL_MEASUREMENTS,
        ]);
        report.extend_from_slice(nonce);
        report.push(0);
        // Measurement record: blocks of (index, spec, size, DMTF type, DMTF size, value).
        let mut record = Vec::with_capacity(usize::from(BLOCKS) * 55);
        for (i, value) in self.measurements.iter().enumerate() {
            let index = i as u8 + 1;
            record.push(index);
            record.push(SPEC_DMTF);
            record.extend_from_slice(&(3 + value.len() as u16).to_le_bytes());
            record.push(0x01); // mutable firmware, digest form
            record.extend_from_slice(&(value.len() as u16).to_le_bytes());
            record.extend_from_slice(value);
        }
        // Response (10.11.2).
        report.extend_from_slice(&[SPDM_VERSION_11, MEASUREMENTS, 0, 0, BLOCKS]);
        report.extend_from_slice(&(record.len() as u32).to_le_bytes()[..3]);
        report.extend_from_slice(&record);
        let mut responder_nonce = [0u8; 32];
        self.rng
            .fill(&mut responder_nonce)
            .map_err(|_| "random responder nonce")?;
        report.extend_from_slice(&responder_nonce);
        let opaque = self.opaque_data();
        report.extend_from_slice(&(opaque.len() as u16).to_le_bytes());
        report.extend_from_slice(&opaque);
        let signature = self
            .key
            .sign(&self.rng, &report)
            .map_err(|_| "GPU report signing failed")?;
        report.extend_from_slice(signature.as_ref());
        Ok(report)
    }

    /// NVIDIA opaque data: (type u16 LE, length u16 LE, value) fields.
    fn opaque_data(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        let mut field = |type_id: u16, value: &[u8]| {
            out.extend_from_slice(&type_id.to_le_bytes());
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
            out.extend_from_slice(value);
        };
        field(3, format!("{DRIVER_VERSION}\0").as_bytes());
        field(6, &VBIOS_RAW);
        field(11, &[0xaa]); // NVDEC0 enabled
        let counts: Vec<u8> = (0..BLOCKS).flat_map(|_| 1u32.to_le_bytes()).collect();
        field(12, &counts);
        field(14, &0x0000_0001u32.to_le_bytes());
        field(15, b"GH100\0");
        field(17, b"G520\0");
        field(18, b"0200\0");
        field(20, &self.fwid);
        field(21, &[0x55]); // protected PCIe off (single-GPU passthrough)
        field(34, &1u32.to_le_bytes());
        field(36, &[0x00]); // feature flag: SPT (CC on)
        out
    }

    /// Every GPU of host `host`, each with a report signed for `nonce`.
    pub fn evidence(&self, host: usize, nonce: &[u8]) -> Result<Vec<GpuEvidence>, String> {
        (0..self.per_host)
            .map(|index| {
                Ok(GpuEvidence {
                    index: index as u32,
                    vendor: "nvidia".into(),
                    report: self.report(nonce)?,
                    cert_chain_pem: self.chain_pem.clone(),
                    uuid: format!("GPU-{host:08x}-0000-4000-8000-{index:012x}"),
                    name: "NVIDIA H100 80GB HBM3".into(),
                    driver_version: DRIVER_VERSION.into(),
                    vbios_version: VBIOS_VERSION.into(),
                    cc_mode: "on".into(),
                    kind: "device-signed".into(),
                    format: "nvidia-spdm".into(),
                    ..Default::default()
                })
            })
            .collect()
    }

    /// The baseline's GPU rules for these devices: signed evidence, versions, CC mode and
    /// every measurement equal to the signed RIMs' golden values.
    pub fn baseline_section(&self) -> String {
        format!(
            "\n[gpu]\ncount = {}\nrequire_signed_evidence = true\ndriver_versions = [\"{DRIVER_VERSION}\"]\n\
             vbios_versions = [\"{VBIOS_VERSION}\"]\nrequire_rim_match = true\nrequire_cc_mode = true\n",
            self.per_host
        )
    }

    /// `vigil serve` flags that trust the test hierarchy.
    pub fn verifier_flags(&self) -> Vec<String> {
        vec![
            "--gpu-roots".into(),
            self.roots_dir.display().to_string(),
            "--rim-roots".into(),
            self.rim_roots_dir.display().to_string(),
            "--rim-dir".into(),
            self.rim_dir.display().to_string(),
        ]
    }

    /// For `vigil gpu verify` checks by hand: one report and its chain written to `dir`.
    pub fn write_sample(&self, dir: &Path, nonce: &[u8]) -> Result<(), String> {
        let report = self.report(nonce)?;
        std::fs::write(dir.join("sample-report.bin"), report).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("sample-chain.pem"), &self.chain_pem).map_err(|e| e.to_string())
    }
}
