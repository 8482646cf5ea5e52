//! Huawei Ascend NPUs through DCMI (`libdcmi.so`), opened at run time.
//!
//! Every NPU is listed with its inventory: chip type and name ("Ascend 910B3"), driver
//! version, electronic label (serial number, model as part number) and the version of each
//! firmware component DCMI lists (`dcmi_get_device_component_list` /
//! `dcmi_get_device_component_static_version`, named after `enum dcmi_component_type`:
//! "XLOADER", "UEFI", "TEE", ...). Such an NPU is kind "host-reported", format
//! "dcmi-inventory".
//!
//! Parts that attest (the library has `dcmiv2_get_attest_evidence` and
//! `dcmiv2_get_attest_cert`, or `dcmiv2_get_attest_akcert` as Huawei's published
//! `dcmi_interface_api.h` spells it, and both succeed) are kind "device-signed", format
//! "ascend-attestation": `evidence` is the JSON document openEuler's Global Trust Authority
//! consumes (see [`ascend_evidence_json`]), the quote answering the 32-byte challenge
//! [`npu_challenge`] derived from the verifier's nonce and the device's index. The request
//! is evidence type 7 (`EVIDENCE_TYPE_ALL`: quote + PCRs + boot log + IMA log).
//!
//! Signatures, `struct dcmi_chip_info`, `struct dcmi_elabel_info` and `struct attest_ctx`
//! follow the DCMI API reference and `dcmi_interface_api.h`.
//!
//! ASSUMPTION (not public): the layout of the evidence buffer `dcmiv2_get_attest_evidence`
//! fills. The reference documents only that it holds the quote, PCR values and logs; this
//! collector reads it as a sequence of records, each a little-endian `u32` type, a
//! little-endian `u32` length and that many bytes: type 1 the quote (`TPMS_ATTEST`), 2 its
//! signature (`TPMT_SIGNATURE`), 3 the SHA-256 PCR values (repeated little-endian `u32`
//! index and 32-byte value), 4 the boot measurement log, 5 the IMA log. Anything else is
//! refused and the NPU is sent as inventory, with the reason in the notes. Only
//! [`parse_evidence`] knows this layout.

use std::ffi::{c_char, c_int, c_uint};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use vigil_proto::v1::{FirmwareVersion, GpuEvidence};

use crate::gpu::{MAX_DEVICES, MAX_FIRMWARE, MAX_TEXT, bound_devices, c_string, symbol};
use crate::nvml::Collection;

const DCMI_OK: c_int = 0;
/// `DCMI_ERR_CODE_NOT_SUPPORT`: a part (or product) without the API.
const DCMI_ERR_CODE_NOT_SUPPORT: c_int = -8000 - 255;
/// `MAX_CHIP_NAME_LEN`.
const CHIP_NAME: usize = 32;
/// `MAX_LENTH` (sic).
const LABEL: usize = 256;
/// `MAX_CHALLENGE_LEN`.
const CHALLENGE: usize = 32;
/// `EVIDENCE_TYPE_ALL`: quote, PCRs, boot log and IMA log.
pub const EVIDENCE_TYPE_ALL: c_uint = 7;
/// Largest IAK certificate read (the reference says at most 2 KiB).
pub const MAX_CERT: usize = 64 * 1024;
/// Largest evidence buffer read (the IMA log dominates).
pub const MAX_EVIDENCE: usize = 4 * 1024 * 1024;

#[repr(C)]
struct ChipInfo {
    chip_type: [u8; CHIP_NAME],
    chip_name: [u8; CHIP_NAME],
    chip_ver: [u8; CHIP_NAME],
    aicore_cnt: c_uint,
}

#[repr(C)]
struct ElabelInfo {
    product_name: [u8; LABEL],
    model: [u8; LABEL],
    manufacturer: [u8; LABEL],
    manufacturer_date: [u8; LABEL],
    serial_number: [u8; LABEL],
}

#[repr(C)]
struct AttestCtx {
    challenge_len: c_uint,
    evidence_type: c_uint,
    challenge: [u8; CHALLENGE],
}

/// `enum dcmi_component_type` names without `DCMI_COMPONENT_TYPE_`, indexed by value.
const COMPONENT_NAMES: [&str; 33] = [
    "NVE",
    "XLOADER",
    "M3FW",
    "UEFI",
    "TEE",
    "KERNEL",
    "DTB",
    "ROOTFS",
    "IMU",
    "IMP",
    "AICPU",
    "HBOOT1_A",
    "HBOOT1_B",
    "HBOOT2",
    "DDR",
    "LP",
    "HSM",
    "SAFETY_ISLAND",
    "HILINK",
    "RAWDATA",
    "SYSDRV",
    "ADSAPP",
    "COMISOLATOR",
    "CLUSTER",
    "CUSTOMIZED",
    "SYS_BASE_CONFIG",
    "RECOVERY",
    "HILINK2",
    "LOGIC_BIST",
    "MEMORY_BIST",
    "ATF",
    "USER_BASE_CONFIG",
    "BOOTROM",
];

/// The name of firmware component `id`; one this attester does not know is named by number.
pub fn component_name(id: u32) -> String {
    usize::try_from(id)
        .ok()
        .and_then(|i| COMPONENT_NAMES.get(i))
        .map_or_else(|| format!("COMPONENT_{id}"), |name| (*name).to_owned())
}

/// The 32-byte challenge an Ascend NPU signs: SHA-256("vigil-npu-v1" || nonce || index as
/// big-endian u32), `index` being the device's `GpuEvidence.index`. The verifier derives the
/// same value; this is the only place the attester computes it.
pub fn npu_challenge(nonce: &[u8], index: u32) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"vigil-npu-v1");
    context.update(nonce);
    context.update(&index.to_be_bytes());
    let mut out = [0u8; 32];
    for (slot, byte) in out.iter_mut().zip(context.finish().as_ref()) {
        *slot = *byte;
    }
    out
}

/// Chip identification (`struct dcmi_chip_info`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chip {
    pub chip_type: String,
    pub chip_name: String,
    pub chip_ver: String,
}

/// Electronic label (`struct dcmi_elabel_info`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Elabel {
    pub product_name: String,
    pub model: String,
    pub serial_number: String,
}

/// What an attesting NPU returned: its IAK certificate and its evidence buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Attestation {
    pub cert: Vec<u8>,
    pub evidence: Vec<u8>,
}

/// What the collector needs from DCMI; a fake implements it in tests.
pub trait DcmiQuery {
    /// (how many cards the library reports, the IDs of those read)
    fn cards(&self) -> Result<(u32, Vec<i32>), String>;
    fn device_count(&self, card: i32) -> Result<u32, String>;
    fn driver_version(&self) -> Result<String, String>;
    fn chip(&self, card: i32, device: i32) -> Result<Chip, String>;
    fn elabel(&self, card: i32, device: i32) -> Result<Elabel, String>;
    /// (how many components the library reports, the IDs of those read)
    fn components(&self, card: i32, device: i32) -> Result<(u32, Vec<u32>), String>;
    fn component_version(&self, card: i32, device: i32, component: u32) -> Result<String, String>;
    /// The device's signed evidence for `challenge`; `None` where the library has no
    /// attestation API.
    fn attest(
        &self,
        card: i32,
        device: i32,
        challenge: &[u8; 32],
    ) -> Result<Option<Attestation>, String>;
}

/// Record types of the assumed evidence layout (see the module documentation).
const RECORD_QUOTE: u32 = 1;
const RECORD_SIGNATURE: u32 = 2;
const RECORD_PCRS: u32 = 3;
const RECORD_BOOT_LOG: u32 = 4;
const RECORD_IMA_LOG: u32 = 5;

/// The evidence buffer, split into its parts.
#[derive(Debug, Default, PartialEq)]
pub struct Evidence {
    pub quote: Vec<u8>,
    pub signature: Vec<u8>,
    pub pcrs: Vec<(u32, [u8; 32])>,
    pub boot_log: Option<Vec<u8>>,
    pub ima_log: Option<Vec<u8>>,
}

/// Splits an evidence buffer in the assumed record layout; every length is checked against
/// what is left, and each record may appear once.
pub fn parse_evidence(mut data: &[u8]) -> Result<Evidence, String> {
    let mut out = Evidence::default();
    let mut seen = Vec::new();
    while !data.is_empty() {
        let (header, rest) = data
            .split_at_checked(8)
            .ok_or_else(|| format!("evidence: {} stray bytes at the end", data.len()))?;
        let word = |at: usize| {
            header
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .unwrap_or_default()
        };
        let (kind, length) = (word(0), word(4));
        let (value, rest) = usize::try_from(length)
            .ok()
            .and_then(|length| rest.split_at_checked(length))
            .ok_or_else(|| {
                format!(
                    "evidence: record {kind} says {length} bytes, {} are left",
                    rest.len()
                )
            })?;
        if seen.contains(&kind) {
            return Err(format!("evidence: record {kind} appears twice"));
        }
        seen.push(kind);
        match kind {
            RECORD_QUOTE => out.quote = value.to_vec(),
            RECORD_SIGNATURE => out.signature = value.to_vec(),
            RECORD_PCRS => {
                if value.len() % 36 != 0 {
                    return Err(format!(
                        "evidence: PCR record of {} bytes is not whole (index, SHA-256) pairs",
                        value.len()
                    ));
                }
                for pair in value.chunks_exact(36) {
                    let (index, digest) = pair.split_at(4);
                    let index = index
                        .try_into()
                        .map(u32::from_le_bytes)
                        .map_err(|_| "PCR")?;
                    let digest: [u8; 32] = digest.try_into().map_err(|_| "PCR")?;
                    out.pcrs.push((index, digest));
                }
            }
            RECORD_BOOT_LOG => out.boot_log = Some(value.to_vec()),
            RECORD_IMA_LOG => out.ima_log = Some(value.to_vec()),
            other => return Err(format!("evidence: unknown record type {other}")),
        }
        data = rest;
    }
    if out.quote.is_empty() || out.signature.is_empty() {
        return Err("evidence: no quote or no signature".into());
    }
    if out.pcrs.is_empty() {
        return Err("evidence: no PCR values".into());
    }
    Ok(out)
}

/// The Ascend evidence document in the shape openEuler's Global Trust Authority consumes:
/// `{"ak_cert": PEM text or base64 DER, "quote": {"quote_data": base64 TPMS_ATTEST,
/// "signature": base64 TPMT_SIGNATURE}, "pcrs": {"hash_alg": "sha256", "pcr_values":
/// [{"pcr_index": N, "pcr_value": hex}]}, "logs": [{"log_type": "boot_measurement" |
/// "runtime_measurement", "log_data": base64}]}`.
pub fn ascend_evidence_json(cert: &[u8], evidence: &[u8]) -> Result<Vec<u8>, String> {
    if cert.is_empty() {
        return Err("empty IAK certificate".into());
    }
    let ak_cert = if cert.starts_with(b"-----BEGIN") {
        let end = cert.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        String::from_utf8(cert.get(..end).unwrap_or_default().to_vec())
            .map_err(|_| "IAK certificate: PEM that is not text")?
    } else {
        BASE64.encode(cert)
    };
    let parts = parse_evidence(evidence)?;
    let mut logs = Vec::new();
    if let Some(log) = &parts.boot_log {
        logs.push(
            serde_json::json!({"log_type": "boot_measurement", "log_data": BASE64.encode(log)}),
        );
    }
    if let Some(log) = &parts.ima_log {
        logs.push(
            serde_json::json!({"log_type": "runtime_measurement", "log_data": BASE64.encode(log)}),
        );
    }
    let pcr_values: Vec<serde_json::Value> = parts
        .pcrs
        .iter()
        .map(|(index, value)| serde_json::json!({"pcr_index": index, "pcr_value": hex::encode(value)}))
        .collect();
    let document = serde_json::json!({
        "ak_cert": ak_cert,
        "quote": {
            "quote_data": BASE64.encode(&parts.quote),
            "signature": BASE64.encode(&parts.signature),
        },
        "pcrs": {"hash_alg": "sha256", "pcr_values": pcr_values},
        "logs": logs,
    });
    serde_json::to_vec(&document).map_err(|e| format!("evidence JSON: {e}"))
}

/// Collects every NPU DCMI reports (at most `MAX_DEVICES`), indexed from `first_index`; an
/// NPU that attests answers `npu_challenge(nonce, its index)`. An NPU some of whose fields or
/// whose attestation cannot be had is still listed with the rest.
pub fn collect_with(api: &dyn DcmiQuery, nonce: &[u8; 32], first_index: u32) -> Collection {
    let mut out = Collection::default();
    let (reported_cards, cards) = match api.cards() {
        Ok(cards) => cards,
        Err(error) => {
            out.problems.push(format!("DCMI: card list: {error}"));
            return out;
        }
    };
    if reported_cards as usize > cards.len() {
        out.problems.push(format!(
            "DCMI reports {reported_cards} cards; only {} are read",
            cards.len()
        ));
    }
    let driver = api.driver_version().unwrap_or_else(|error| {
        out.problems.push(format!("DCMI: driver version: {error}"));
        String::new()
    });
    let mut devices = Vec::new();
    let mut reported: u32 = 0;
    for card in cards.iter().take(MAX_DEVICES as usize) {
        match api.device_count(*card) {
            Ok(count) => {
                reported = reported.saturating_add(count);
                let room = (MAX_DEVICES as usize).saturating_sub(devices.len());
                let take = usize::try_from(count).unwrap_or(usize::MAX).min(room);
                let take = i32::try_from(take).unwrap_or(0);
                devices.extend((0..take).map(|device| (*card, device)));
            }
            Err(error) => out
                .problems
                .push(format!("DCMI: card {card} device count: {error}")),
        }
    }
    bound_devices(reported, "DCMI", &mut out.problems);
    for (n, (card, device)) in devices.into_iter().enumerate() {
        let index = first_index.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        let mut note = |what: &str, error: String| {
            out.problems
                .push(format!("DCMI: NPU {card}/{device} {what}: {error}"));
        };
        let mut npu = GpuEvidence {
            index,
            vendor: "huawei".into(),
            kind: "host-reported".into(),
            format: "dcmi-inventory".into(),
            driver_version: driver.clone(),
            ..Default::default()
        };
        match api.chip(card, device) {
            Ok(chip) => {
                npu.name = format!("{} {}", chip.chip_type, chip.chip_name)
                    .trim()
                    .to_owned();
            }
            Err(error) => note("chip info", error),
        }
        match api.elabel(card, device) {
            Ok(label) => {
                npu.serial = label.serial_number;
                npu.part_number = label.model;
                if npu.name.is_empty() {
                    npu.name = label.product_name;
                }
            }
            Err(error) => note("electronic label", error),
        }
        match api.components(card, device) {
            Ok((count, components)) => {
                if count as usize > MAX_FIRMWARE {
                    note(
                        "firmware",
                        format!("{count} components reported; only {MAX_FIRMWARE} are read"),
                    );
                }
                let take = (count as usize).min(MAX_FIRMWARE);
                for component in components.iter().take(take) {
                    match api.component_version(card, device, *component) {
                        Ok(version) => npu.firmware.push(FirmwareVersion {
                            id: component_name(*component),
                            version,
                        }),
                        Err(error) => {
                            note(&format!("{} version", component_name(*component)), error)
                        }
                    }
                }
            }
            Err(error) => note("firmware components", error),
        }
        let challenge = npu_challenge(nonce, index);
        match api.attest(card, device, &challenge) {
            Ok(None) => {}
            Ok(Some(attestation)) => {
                match ascend_evidence_json(&attestation.cert, &attestation.evidence) {
                    Ok(document) => {
                        npu.kind = "device-signed".into();
                        npu.format = "ascend-attestation".into();
                        npu.evidence = document;
                    }
                    Err(error) => note("attestation", error),
                }
            }
            Err(error) => note("attestation", error),
        }
        out.gpus.push(npu);
    }
    out
}

/// Opens DCMI (the given path, or the system's) and collects; a host without it has no Ascend
/// NPUs (said in `problems`).
pub fn collect(nonce: &[u8; 32], first_index: u32, library: Option<&Path>) -> Collection {
    match Dcmi::open(library) {
        Ok(dcmi) => collect_with(&dcmi, nonce, first_index),
        Err(reason) => Collection {
            gpus: Vec::new(),
            problems: vec![format!("no Huawei NPU: {reason}")],
        },
    }
}

/// The real DCMI, opened with `dlopen`.
pub struct Dcmi {
    library: libloading::Library,
    v2_initialised: std::cell::Cell<Option<c_int>>,
}

fn check(function: &str, rc: c_int) -> Result<(), String> {
    if rc == DCMI_OK {
        Ok(())
    } else {
        Err(format!("{function} returned {rc}"))
    }
}

impl Dcmi {
    pub fn open(path: Option<&Path>) -> Result<Self, String> {
        let library =
            crate::gpu::open_library(path, &["libdcmi.so", "/usr/local/dcmi/libdcmi.so"], "DCMI")?;
        // SAFETY: `int dcmi_init(void)`.
        let rc = unsafe {
            let init: unsafe extern "C" fn() -> c_int = symbol(&library, "dcmi_init")?;
            init()
        };
        check("dcmi_init", rc)?;
        Ok(Dcmi {
            library,
            v2_initialised: std::cell::Cell::new(None),
        })
    }

    /// A `(card, device, struct *)` getter.
    fn device_struct<T>(&self, card: i32, device: i32, function: &str) -> Result<Box<T>, String> {
        // SAFETY: T is plain old data (byte arrays and integers).
        let mut value: Box<T> = unsafe { Box::new(std::mem::zeroed()) };
        // SAFETY: signature from dcmi_interface_api.h: (int card_id, int device_id, T *).
        let rc = unsafe {
            let f: unsafe extern "C" fn(c_int, c_int, *mut T) -> c_int =
                symbol(&self.library, function)?;
            f(card, device, &mut *value)
        };
        check(function, rc)?;
        Ok(value)
    }

    /// `dcmiv2_init` once, where the library has it.
    fn init_v2(&self) -> Result<(), String> {
        let rc = match self.v2_initialised.get() {
            Some(rc) => rc,
            None => {
                // SAFETY: `int dcmiv2_init(void)`.
                let rc = unsafe {
                    match symbol::<unsafe extern "C" fn() -> c_int>(&self.library, "dcmiv2_init") {
                        Ok(init) => init(),
                        Err(_) => DCMI_OK,
                    }
                };
                self.v2_initialised.set(Some(rc));
                rc
            }
        };
        check("dcmiv2_init", rc)
    }
}

/// Copies `length` bytes out of `buffer`, refusing a length past its end.
fn bounded(buffer: &[u8], length: c_uint, what: &str) -> Result<Vec<u8>, String> {
    usize::try_from(length)
        .ok()
        .and_then(|length| buffer.get(..length))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| {
            format!(
                "{what}: DCMI reports {length} bytes in a {}-byte buffer",
                buffer.len()
            )
        })
}

impl DcmiQuery for Dcmi {
    fn cards(&self) -> Result<(u32, Vec<i32>), String> {
        let mut list = vec![0 as c_int; MAX_DEVICES as usize];
        let mut count: c_int = 0;
        // SAFETY: `int dcmi_get_card_list(int *card_num, int *card_list, int list_len)` (or
        // its older name `dcmi_get_card_num_list`); the list and its length agree.
        let (function, rc) = unsafe {
            type CardList = unsafe extern "C" fn(*mut c_int, *mut c_int, c_int) -> c_int;
            let (function, f) = match symbol::<CardList>(&self.library, "dcmi_get_card_list") {
                Ok(f) => ("dcmi_get_card_list", f),
                Err(_) => (
                    "dcmi_get_card_num_list",
                    symbol::<CardList>(&self.library, "dcmi_get_card_num_list")?,
                ),
            };
            (
                function,
                f(&mut count, list.as_mut_ptr(), MAX_DEVICES as c_int),
            )
        };
        check(function, rc)?;
        let count = u32::try_from(count).map_err(|_| format!("{function}: {count} cards"))?;
        list.truncate((count as usize).min(MAX_DEVICES as usize));
        Ok((count, list))
    }

    fn device_count(&self, card: i32) -> Result<u32, String> {
        let mut count: c_int = 0;
        // SAFETY: `int dcmi_get_device_num_in_card(int card_id, int *device_num)`.
        let rc = unsafe {
            let f: unsafe extern "C" fn(c_int, *mut c_int) -> c_int =
                symbol(&self.library, "dcmi_get_device_num_in_card")?;
            f(card, &mut count)
        };
        check("dcmi_get_device_num_in_card", rc)?;
        u32::try_from(count).map_err(|_| format!("dcmi_get_device_num_in_card: {count} devices"))
    }

    fn driver_version(&self) -> Result<String, String> {
        let mut buffer = [0u8; MAX_TEXT];
        // SAFETY: `int dcmi_get_driver_version(char *driver_ver, unsigned int len)`.
        let rc = unsafe {
            let f: unsafe extern "C" fn(*mut c_char, c_uint) -> c_int =
                symbol(&self.library, "dcmi_get_driver_version")?;
            f(buffer.as_mut_ptr().cast(), MAX_TEXT as c_uint)
        };
        check("dcmi_get_driver_version", rc)?;
        c_string(&buffer, "driver version")
    }

    fn chip(&self, card: i32, device: i32) -> Result<Chip, String> {
        let info: Box<ChipInfo> = self.device_struct(card, device, "dcmi_get_device_chip_info")?;
        Ok(Chip {
            chip_type: c_string(&info.chip_type, "chip type")?,
            chip_name: c_string(&info.chip_name, "chip name")?,
            chip_ver: c_string(&info.chip_ver, "chip version")?,
        })
    }

    fn elabel(&self, card: i32, device: i32) -> Result<Elabel, String> {
        let info: Box<ElabelInfo> =
            self.device_struct(card, device, "dcmi_get_device_elabel_info")?;
        Ok(Elabel {
            product_name: c_string(&info.product_name, "product name")?,
            model: c_string(&info.model, "model")?,
            serial_number: c_string(&info.serial_number, "serial number")?,
        })
    }

    fn components(&self, card: i32, device: i32) -> Result<(u32, Vec<u32>), String> {
        let mut count: c_uint = 0;
        // SAFETY: `int dcmi_get_device_component_count(int, int, unsigned int *)` and
        // `int dcmi_get_device_component_list(int, int, enum dcmi_component_type *,
        // unsigned int count)`; the table holds the count passed.
        unsafe {
            let f: unsafe extern "C" fn(c_int, c_int, *mut c_uint) -> c_int =
                symbol(&self.library, "dcmi_get_device_component_count")?;
            check(
                "dcmi_get_device_component_count",
                f(card, device, &mut count),
            )?;
            let take = (count as usize).min(MAX_FIRMWARE);
            let mut table = vec![0 as c_uint; take];
            if take > 0 {
                let f: unsafe extern "C" fn(c_int, c_int, *mut c_uint, c_uint) -> c_int =
                    symbol(&self.library, "dcmi_get_device_component_list")?;
                check(
                    "dcmi_get_device_component_list",
                    f(card, device, table.as_mut_ptr(), take as c_uint),
                )?;
            }
            Ok((count, table))
        }
    }

    fn component_version(&self, card: i32, device: i32, component: u32) -> Result<String, String> {
        let mut buffer = [0u8; MAX_TEXT];
        // SAFETY: `int dcmi_get_device_component_static_version(int, int, enum
        // dcmi_component_type, unsigned char *version_str, unsigned int len)`.
        let rc = unsafe {
            let f: unsafe extern "C" fn(c_int, c_int, c_uint, *mut u8, c_uint) -> c_int =
                symbol(&self.library, "dcmi_get_device_component_static_version")?;
            f(
                card,
                device,
                component,
                buffer.as_mut_ptr(),
                MAX_TEXT as c_uint,
            )
        };
        check("dcmi_get_device_component_static_version", rc)?;
        c_string(&buffer, "component version")
    }

    fn attest(
        &self,
        card: i32,
        device: i32,
        challenge: &[u8; 32],
    ) -> Result<Option<Attestation>, String> {
        type CertFn = unsafe extern "C" fn(c_int, *mut u8, *mut c_uint) -> c_int;
        type EvidenceFn =
            unsafe extern "C" fn(c_int, *mut AttestCtx, *mut u8, *mut c_uint) -> c_int;
        // SAFETY: signatures from the DCMI reference / dcmi_interface_api.h.
        let evidence_fn =
            match unsafe { symbol::<EvidenceFn>(&self.library, "dcmiv2_get_attest_evidence") } {
                Ok(f) => f,
                Err(_) => return Ok(None),
            };
        let (cert_name, cert_fn) =
            match unsafe { symbol::<CertFn>(&self.library, "dcmiv2_get_attest_cert") } {
                Ok(f) => ("dcmiv2_get_attest_cert", f),
                Err(_) => {
                    match unsafe { symbol::<CertFn>(&self.library, "dcmiv2_get_attest_akcert") } {
                        Ok(f) => ("dcmiv2_get_attest_akcert", f),
                        Err(_) => return Ok(None),
                    }
                }
            };
        self.init_v2()?;
        let mut logic: c_int = -1;
        // SAFETY: `int dcmi_get_device_logic_id(int *device_logic_id, int card_id,
        // int device_id)`.
        let rc = unsafe {
            let f: unsafe extern "C" fn(*mut c_int, c_int, c_int) -> c_int =
                symbol(&self.library, "dcmi_get_device_logic_id")?;
            f(&mut logic, card, device)
        };
        check("dcmi_get_device_logic_id", rc)?;
        let mut cert = vec![0u8; MAX_CERT];
        let mut cert_len = MAX_CERT as c_uint;
        // SAFETY: the buffer and its length agree.
        let rc = unsafe { cert_fn(logic, cert.as_mut_ptr(), &mut cert_len) };
        if rc == DCMI_ERR_CODE_NOT_SUPPORT {
            // A part that does not attest (the library has the API for those that do).
            return Ok(None);
        }
        check(cert_name, rc)?;
        let cert = bounded(&cert, cert_len, "IAK certificate")?;
        let mut ctx = AttestCtx {
            challenge_len: CHALLENGE as c_uint,
            evidence_type: EVIDENCE_TYPE_ALL,
            challenge: *challenge,
        };
        let mut evidence = vec![0u8; MAX_EVIDENCE];
        let mut evidence_len = MAX_EVIDENCE as c_uint;
        // SAFETY: the context has the documented layout; the buffer and its length agree.
        let rc = unsafe { evidence_fn(logic, &mut ctx, evidence.as_mut_ptr(), &mut evidence_len) };
        check("dcmiv2_get_attest_evidence", rc)?;
        let evidence = bounded(&evidence, evidence_len, "evidence")?;
        Ok(Some(Attestation { cert, evidence }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u32, value: &[u8]) -> Vec<u8> {
        let mut out = kind.to_le_bytes().to_vec();
        out.extend((value.len() as u32).to_le_bytes());
        out.extend(value);
        out
    }

    fn pcrs(values: &[(u32, u8)]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|(index, fill)| {
                let mut pair = index.to_le_bytes().to_vec();
                pair.extend([*fill; 32]);
                pair
            })
            .collect()
    }

    fn good_evidence() -> Vec<u8> {
        [
            record(RECORD_QUOTE, b"\xffTCG\x80\x18quote"),
            record(RECORD_SIGNATURE, b"\x00\x18sig"),
            record(RECORD_PCRS, &pcrs(&[(0, 0xaa), (7, 0xbb)])),
            record(RECORD_BOOT_LOG, b"boot"),
            record(RECORD_IMA_LOG, b"ima"),
        ]
        .concat()
    }

    /// Two cards of one NPU each plus a third that fails; attests where `attesting`.
    struct FakeDcmi {
        cards: (u32, Vec<i32>),
        devices_per_card: u32,
        attesting: bool,
        evidence: Vec<u8>,
        failing_card: Option<i32>,
        components: (u32, Vec<u32>),
        challenges: std::cell::RefCell<Vec<[u8; 32]>>,
    }

    impl DcmiQuery for FakeDcmi {
        fn cards(&self) -> Result<(u32, Vec<i32>), String> {
            Ok(self.cards.clone())
        }
        fn device_count(&self, _: i32) -> Result<u32, String> {
            Ok(self.devices_per_card)
        }
        fn driver_version(&self) -> Result<String, String> {
            Ok("24.1.rc2".into())
        }
        fn chip(&self, card: i32, _: i32) -> Result<Chip, String> {
            if self.failing_card == Some(card) {
                return Err("dcmi_get_device_chip_info returned -8005".into());
            }
            Ok(Chip {
                chip_type: "Ascend".into(),
                chip_name: "910B3".into(),
                chip_ver: "V1".into(),
            })
        }
        fn elabel(&self, card: i32, _: i32) -> Result<Elabel, String> {
            Ok(Elabel {
                product_name: "Atlas 800T A2".into(),
                model: "AS-ATLAS800T-A2".into(),
                serial_number: format!("102301{card:06}"),
            })
        }
        fn components(&self, _: i32, _: i32) -> Result<(u32, Vec<u32>), String> {
            Ok(self.components.clone())
        }
        fn component_version(&self, _: i32, _: i32, component: u32) -> Result<String, String> {
            if component == 4 {
                return Err("dcmi_get_device_component_static_version returned -8255".into());
            }
            Ok(format!("7.1.0.{component}.220"))
        }
        fn attest(
            &self,
            _: i32,
            _: i32,
            challenge: &[u8; 32],
        ) -> Result<Option<Attestation>, String> {
            if !self.attesting {
                return Ok(None);
            }
            self.challenges.borrow_mut().push(*challenge);
            Ok(Some(Attestation {
                cert: vec![0x30, 0x03, 1, 2, 3],
                evidence: self.evidence.clone(),
            }))
        }
    }

    fn fake(attesting: bool) -> FakeDcmi {
        FakeDcmi {
            cards: (2, vec![1, 2]),
            devices_per_card: 1,
            attesting,
            evidence: good_evidence(),
            failing_card: None,
            components: (3, vec![1, 3, 4]),
            challenges: Default::default(),
        }
    }

    #[test]
    fn challenge_test_vector() {
        let nonce: Vec<u8> = (0u8..32).collect();
        assert_eq!(
            hex::encode(npu_challenge(&nonce, 3)),
            "ea88bb1e15eb98b0289a83057f38b15d16d27898e5be605c36a4eb3319b495de"
        );
        assert_eq!(
            hex::encode(npu_challenge(&[0; 32], 0)),
            "105ff6633e6769f616e5dcb083354fbacbaf87f1d2d7b2c3bd926145c03cf44f"
        );
    }

    #[test]
    fn inventory_only_parts_are_host_reported() {
        let collection = collect_with(&fake(false), &[5; 32], 8);
        assert_eq!(collection.gpus.len(), 2);
        let npu = &collection.gpus[1];
        assert_eq!(npu.index, 9);
        assert_eq!(
            (npu.vendor.as_str(), npu.kind.as_str(), npu.format.as_str()),
            ("huawei", "host-reported", "dcmi-inventory")
        );
        assert_eq!(npu.name, "Ascend 910B3");
        assert_eq!(npu.serial, "102301000002");
        assert_eq!(npu.part_number, "AS-ATLAS800T-A2");
        assert_eq!(npu.driver_version, "24.1.rc2");
        assert!(npu.evidence.is_empty());
        let firmware: Vec<(&str, &str)> = npu
            .firmware
            .iter()
            .map(|f| (f.id.as_str(), f.version.as_str()))
            .collect();
        assert_eq!(
            firmware,
            [("XLOADER", "7.1.0.1.220"), ("UEFI", "7.1.0.3.220")]
        );
        // The TEE version failed: noted, the NPU is still listed.
        assert_eq!(
            collection.problems,
            [
                "DCMI: NPU 1/0 TEE version: dcmi_get_device_component_static_version returned -8255",
                "DCMI: NPU 2/0 TEE version: dcmi_get_device_component_static_version returned -8255"
            ]
        );
    }

    #[test]
    fn attesting_parts_send_the_gta_document_for_their_challenge() {
        let dcmi = fake(true);
        let nonce = [7u8; 32];
        let collection = collect_with(&dcmi, &nonce, 4);
        assert_eq!(
            *dcmi.challenges.borrow(),
            vec![npu_challenge(&nonce, 4), npu_challenge(&nonce, 5)]
        );
        let npu = &collection.gpus[0];
        assert_eq!(
            (npu.kind.as_str(), npu.format.as_str()),
            ("device-signed", "ascend-attestation")
        );
        let document: serde_json::Value = serde_json::from_slice(&npu.evidence).unwrap();
        assert_eq!(
            document,
            serde_json::json!({
                "ak_cert": "MAMBAgM=",
                "quote": {"quote_data": BASE64.encode(b"\xffTCG\x80\x18quote"),
                          "signature": BASE64.encode(b"\x00\x18sig")},
                "pcrs": {"hash_alg": "sha256", "pcr_values": [
                    {"pcr_index": 0, "pcr_value": "aa".repeat(32)},
                    {"pcr_index": 7, "pcr_value": "bb".repeat(32)}]},
                "logs": [
                    {"log_type": "boot_measurement", "log_data": "Ym9vdA=="},
                    {"log_type": "runtime_measurement", "log_data": "aW1h"}]
            })
        );
        // Inventory rides along.
        assert_eq!(npu.name, "Ascend 910B3");
    }

    #[test]
    fn pem_certificates_are_kept_as_text() {
        let pem = b"-----BEGIN CERTIFICATE-----\nMAMBAgM=\n-----END CERTIFICATE-----\n\0\0";
        let json = ascend_evidence_json(pem, &good_evidence()).unwrap();
        let document: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            document["ak_cert"],
            "-----BEGIN CERTIFICATE-----\nMAMBAgM=\n-----END CERTIFICATE-----\n"
        );
        assert!(ascend_evidence_json(b"", &good_evidence()).is_err());
        assert!(ascend_evidence_json(b"-----BEGIN \xff", &good_evidence()).is_err());
    }

    #[test]
    fn malformed_evidence_falls_back_to_inventory_with_the_reason() {
        let quote = record(RECORD_QUOTE, b"q");
        let signature = record(RECORD_SIGNATURE, b"s");
        let pcr = record(RECORD_PCRS, &pcrs(&[(0, 1)]));
        for (evidence, reason) in [
            ([quote.clone(), signature.clone()].concat(), "no PCR values"),
            (
                [quote.clone(), pcr.clone()].concat(),
                "no quote or no signature",
            ),
            (
                [quote.clone(), signature.clone(), pcr.clone(), vec![1, 0, 0]].concat(),
                "3 stray bytes at the end",
            ),
            (
                [
                    quote.clone(),
                    2u32.to_le_bytes().to_vec(),
                    u32::MAX.to_le_bytes().to_vec(),
                ]
                .concat(),
                "record 2 says 4294967295 bytes, 0 are left",
            ),
            (
                [quote.clone(), quote.clone()].concat(),
                "record 1 appears twice",
            ),
            (
                [
                    quote.clone(),
                    signature.clone(),
                    record(RECORD_PCRS, &[0; 35]),
                ]
                .concat(),
                "PCR record of 35 bytes",
            ),
            (
                [
                    quote.clone(),
                    signature.clone(),
                    pcr.clone(),
                    record(9, b""),
                ]
                .concat(),
                "unknown record type 9",
            ),
            (Vec::new(), "no quote"),
        ] {
            let mut dcmi = fake(true);
            dcmi.evidence = evidence;
            let collection = collect_with(&dcmi, &[0; 32], 0);
            assert_eq!(collection.gpus.len(), 2);
            assert!(
                collection
                    .gpus
                    .iter()
                    .all(|g| g.kind == "host-reported" && g.evidence.is_empty())
            );
            assert!(
                collection
                    .problems
                    .iter()
                    .any(|p| p.starts_with("DCMI: NPU 1/0 attestation: evidence: ")
                        && p.contains(reason)),
                "{reason}: {:?}",
                collection.problems
            );
        }
    }

    #[test]
    fn counts_from_the_library_are_bounded_and_failures_kept() {
        let mut dcmi = fake(false);
        dcmi.cards = (1000, (0..64).collect());
        dcmi.devices_per_card = 1000;
        dcmi.components = (1000, (0..100).collect());
        let collection = collect_with(&dcmi, &[0; 32], 0);
        assert_eq!(collection.gpus.len(), MAX_DEVICES as usize);
        assert!(
            collection
                .gpus
                .iter()
                .all(|g| g.firmware.len() <= MAX_FIRMWARE)
        );
        assert_eq!(collection.gpus[0].firmware.len(), MAX_FIRMWARE - 1);
        assert!(
            collection
                .problems
                .contains(&"DCMI reports 1000 cards; only 64 are read".to_owned())
        );
        assert!(
            collection
                .problems
                .contains(&"DCMI reports 64000 devices; only 64 are read".to_owned())
        );
        assert!(
            collection
                .problems
                .iter()
                .any(|p| p.ends_with("1000 components reported; only 64 are read"))
        );
        let mut dcmi = fake(false);
        dcmi.failing_card = Some(1);
        let collection = collect_with(&dcmi, &[0; 32], 0);
        assert_eq!(collection.gpus.len(), 2);
        assert_eq!(collection.gpus[0].name, "Atlas 800T A2");
        assert!(collection.problems[0].starts_with("DCMI: NPU 1/0 chip info"));
    }

    #[test]
    fn component_names_follow_the_header() {
        assert_eq!(component_name(0), "NVE");
        assert_eq!(component_name(3), "UEFI");
        assert_eq!(component_name(32), "BOOTROM");
        assert_eq!(component_name(33), "COMPONENT_33");
    }

    #[test]
    fn sizes_reported_by_the_library_are_bounded() {
        assert_eq!(bounded(&[1, 2, 3], 2, "e").unwrap(), vec![1, 2]);
        let error = bounded(&[1, 2, 3], 4, "evidence").unwrap_err();
        assert_eq!(error, "evidence: DCMI reports 4 bytes in a 3-byte buffer");
    }

    #[test]
    fn structs_have_the_headers_sizes() {
        assert_eq!(std::mem::size_of::<ChipInfo>(), 3 * 32 + 4);
        assert_eq!(std::mem::size_of::<ElabelInfo>(), 5 * 256);
        assert_eq!(std::mem::size_of::<AttestCtx>(), 40);
    }

    #[test]
    fn a_host_without_dcmi_has_no_npus_and_says_why() {
        let collection = collect(&[0; 32], 0, Some(Path::new("/nonexistent/libdcmi.so")));
        assert!(collection.gpus.is_empty());
        assert!(
            collection.problems[0].starts_with("no Huawei NPU: DCMI at /nonexistent/libdcmi.so")
        );
    }
}
