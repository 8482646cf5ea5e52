//! Typed boot claims from event data. A value is taken from an event's data only after the
//! data is shown to hash to the digest the firmware extended, for the event types whose
//! digest the TCG PC Client profile defines as the hash of the data; otherwise the claim says
//! it is unverifiable (its weight then rests on the replay matching the quote), and data
//! that does not match its digest yields a failed claim, never a silent value.
//!
//! Claims say nothing about whether the log matches the TPM: appraisal uses them only
//! together with a successful replay against the quote.

use serde::Serialize;

use super::parse::{Event, EventLog};
use super::render::printable;
use super::uefi::{
    EFI_CERT_SHA256_GUID, EFI_CERT_X509_GUID, VariableData, guid_string, signature_lists,
};
use crate::evidence::tpm::HashAlg;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "value")]
pub enum ClaimValue {
    Bool(bool),
    Int(u64),
    Text(String),
    Digest(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "status", content = "reason")]
pub enum ClaimStatus {
    /// The event data hashes to every computable digest the firmware extended.
    Verified,
    /// The digest is not a hash of the data (e.g. an Authenticode image hash).
    Unverifiable(String),
    /// The data does not hash to the measured digest: the value is not to be believed.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Provenance {
    pub event: usize,
    pub pcr: u32,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Claim {
    pub name: String,
    pub value: ClaimValue,
    #[serde(flatten)]
    pub status: ClaimStatus,
    pub provenance: Provenance,
}

const EV_SEPARATOR: u32 = 0x4;
const EV_ACTION: u32 = 0x5;
const EV_S_CRTM_VERSION: u32 = 0x8;
const EV_IPL: u32 = 0xd;
const EV_EFI_VARIABLE_DRIVER_CONFIG: u32 = 0x8000_0001;
const EV_EFI_VARIABLE_BOOT: u32 = 0x8000_0002;
const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
const EV_EFI_GPT_EVENT: u32 = 0x8000_0006;
const EV_EFI_ACTION: u32 = 0x8000_0007;
const EV_EFI_VARIABLE_BOOT2: u32 = 0x8000_000c;
const EV_EFI_VARIABLE_AUTHORITY: u32 = 0x8000_00e0;

/// Does the data hash to every digest Vigil can compute? `alternatives` are other byte
/// strings the profile allows the digest to cover (e.g. only the variable's value).
fn data_status(log: &EventLog, event: &Event, alternatives: &[&[u8]]) -> ClaimStatus {
    let mut checked = 0;
    for (id, digest) in &event.digests {
        let Some(hash) = log
            .algorithms
            .iter()
            .find(|a| a.id == *id)
            .and_then(|a| a.hash)
        else {
            continue;
        };
        let matches = std::iter::once(event.data.as_slice())
            .chain(alternatives.iter().copied())
            .any(|candidate| hash.digest(candidate).as_deref() == Some(digest.as_slice()));
        if !matches {
            return ClaimStatus::Failed(format!(
                "event {} data does not hash to its {} digest {}",
                event.number,
                hash.name(),
                hex::encode(digest)
            ));
        }
        checked += 1;
    }
    if checked == 0 {
        ClaimStatus::Unverifiable(format!(
            "event {} has no digest Vigil can compute",
            event.number
        ))
    } else {
        ClaimStatus::Verified
    }
}

fn provenance(event: &Event) -> Provenance {
    Provenance {
        event: event.number,
        pcr: event.pcr,
        offset: event.offset,
    }
}

fn claim(name: impl Into<String>, value: ClaimValue, status: ClaimStatus, event: &Event) -> Claim {
    Claim {
        name: name.into(),
        value,
        status,
        provenance: provenance(event),
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(HashAlg::Sha256.digest(data).unwrap_or_default())
}

/// Every claim the log supports, in event order.
pub fn claims(log: &EventLog) -> Vec<Claim> {
    let mut out = Vec::new();
    let mut app_index = 0;
    let mut authority_index = 0;
    for event in &log.events {
        match event.event_type {
            EV_EFI_VARIABLE_AUTHORITY => {
                if let Some(claim) = authority_claim(log, event, authority_index) {
                    out.push(claim);
                    authority_index += 1;
                }
            }
            EV_EFI_VARIABLE_DRIVER_CONFIG => secure_boot_claims(log, event, &mut out),
            EV_EFI_VARIABLE_BOOT | EV_EFI_VARIABLE_BOOT2 => {
                boot_variable_claims(log, event, &mut out)
            }
            EV_SEPARATOR => {
                let kind = match event.data.as_slice() {
                    [0, 0, 0, 0] => "normal",
                    [1, 0, 0, 0] | [0xff, 0xff, 0xff, 0xff] => "error",
                    _ => "unknown",
                };
                out.push(claim(
                    format!("boot.separators.pcr{}", event.pcr),
                    ClaimValue::Text(kind.to_owned()),
                    data_status(log, event, &[]),
                    event,
                ));
            }
            EV_EFI_ACTION | EV_ACTION => {
                if let Some(text) = printable(&event.data)
                    && text.starts_with("Exit Boot Services")
                {
                    out.push(claim(
                        "boot.exit_boot_services",
                        ClaimValue::Text(text),
                        data_status(log, event, &[]),
                        event,
                    ));
                }
            }
            EV_S_CRTM_VERSION => {
                let text = printable(&event.data).unwrap_or_else(|| hex::encode(&event.data));
                out.push(claim(
                    "boot.firmware.crtm_version",
                    ClaimValue::Text(text),
                    data_status(log, event, &[]),
                    event,
                ));
            }
            EV_EFI_BOOT_SERVICES_APPLICATION => {
                let (algorithm, digest) = event
                    .digest(HashAlg::Sha256.id())
                    .map(|d| ("sha256", d))
                    .or_else(|| event.digest(HashAlg::Sha1.id()).map(|d| ("sha1", d)))
                    .unwrap_or(("none", &[]));
                let why =
                    "the digest is the image's Authenticode hash; its weight rests on the replay";
                out.push(claim(
                    format!("boot.apps[{app_index}].authenticode_{algorithm}"),
                    ClaimValue::Digest(hex::encode(digest)),
                    ClaimStatus::Unverifiable(why.to_owned()),
                    event,
                ));
                if let Some(path) = image_file_path(&event.data) {
                    out.push(claim(
                        format!("boot.apps[{app_index}].path"),
                        ClaimValue::Text(path),
                        ClaimStatus::Unverifiable(why.to_owned()),
                        event,
                    ));
                }
                app_index += 1;
            }
            EV_EFI_GPT_EVENT => {
                let status = data_status(log, event, &[]);
                if let Some((disk, partitions)) = gpt_summary(&event.data) {
                    out.push(claim(
                        "boot.gpt.disk_guid",
                        ClaimValue::Text(disk),
                        status.clone(),
                        event,
                    ));
                    out.push(claim(
                        "boot.gpt.partitions",
                        ClaimValue::Int(partitions),
                        status,
                        event,
                    ));
                }
            }
            EV_IPL => ipl_claims(log, event, &mut out),
            _ => {}
        }
    }
    out
}

fn secure_boot_claims(log: &EventLog, event: &Event, out: &mut Vec<Claim>) {
    let Some(variable) = VariableData::parse(&event.data) else {
        return;
    };
    // The profile defines the digest over the whole UEFI_VARIABLE_DATA (name and value). Some
    // firmware hashes only the value: the value is then bound, but not which variable it is.
    let status = match data_status(log, event, &[]) {
        ClaimStatus::Failed(why) => match data_status(log, event, &[variable.data]) {
            ClaimStatus::Verified => ClaimStatus::Unverifiable(format!(
                "event {}: the digest covers only the variable's value, not its name",
                event.number
            )),
            _ => ClaimStatus::Failed(why),
        },
        other => other,
    };
    let name = variable.name.as_str();
    match name {
        "SecureBoot" => out.push(claim(
            "boot.secure_boot.enabled",
            ClaimValue::Bool(variable.data.first() == Some(&1)),
            status,
            event,
        )),
        "PK" | "KEK" | "db" | "dbx" => {
            let key = name.to_ascii_lowercase();
            out.push(claim(
                format!("boot.secure_boot.{key}.sha256"),
                ClaimValue::Digest(sha256_hex(variable.data)),
                status.clone(),
                event,
            ));
            let Some(entries) = signature_lists(variable.data) else {
                out.push(claim(
                    format!("boot.secure_boot.{key}.entries"),
                    ClaimValue::Text("malformed EFI_SIGNATURE_LIST".into()),
                    ClaimStatus::Failed(format!(
                        "event {}: {name} is not a valid signature list",
                        event.number
                    )),
                    event,
                ));
                return;
            };
            out.push(claim(
                format!("boot.secure_boot.{key}.entries"),
                ClaimValue::Int(entries.len() as u64),
                status.clone(),
                event,
            ));
            let certificates: Vec<String> = entries
                .iter()
                .filter(|e| guid_string(&e.signature_type) == EFI_CERT_X509_GUID)
                .map(|e| certificate_summary(e.data))
                .collect();
            if !certificates.is_empty() {
                out.push(claim(
                    format!("boot.secure_boot.{key}.certificates"),
                    ClaimValue::List(certificates),
                    status.clone(),
                    event,
                ));
            }
            let hashes: Vec<String> = entries
                .iter()
                .filter(|e| guid_string(&e.signature_type) == EFI_CERT_SHA256_GUID)
                .map(|e| hex::encode(e.data))
                .collect();
            if !hashes.is_empty() {
                out.push(claim(
                    format!("boot.secure_boot.{key}.sha256_entries"),
                    ClaimValue::List(hashes),
                    status,
                    event,
                ));
            }
        }
        _ => {}
    }
}

/// The Secure Boot authority (a db/MokList/Shim certificate or hash) that verified a boot
/// application. The digest covers the whole event data, trailing bytes included.
fn authority_claim(log: &EventLog, event: &Event, index: usize) -> Option<Claim> {
    let (variable, trailing) = VariableData::parse_prefix(&event.data)?;
    let value = variable.data;
    // EFI_SIGNATURE_DATA (owner GUID, then the certificate or hash); "Shim" holds a bare
    // certificate.
    let is_certificate = |bytes: &[u8]| {
        use x509_parser::prelude::FromDer;
        x509_parser::certificate::X509Certificate::from_der(bytes).is_ok()
    };
    // Shim also logs its own state this way (SbatLevel text, MokListTrusted flag).
    let summary = if is_certificate(value) {
        certificate_summary(value)
    } else if let Some(rest) = value.get(16..).filter(|rest| is_certificate(rest)) {
        certificate_summary(rest)
    } else if let Some(text) = printable(value) {
        format!("value {:?}", text.trim_end())
    } else if variable.name == "db" && value.len() == 48 {
        format!("hash={}", hex::encode(value.get(16..).unwrap_or_default()))
    } else if value.len() <= 64 {
        format!("value {}", hex::encode(value))
    } else {
        format!("value sha256={}", sha256_hex(value))
    };
    let mut text = format!("{}: {summary}", variable.name);
    if trailing > 0 {
        text.push_str(&format!(" ({trailing} bytes after the variable)"));
    }
    // The digest normally covers the whole event data; with trailing bytes, also try the
    // variable alone.
    let variable_only = event
        .data
        .get(..event.data.len().saturating_sub(trailing))
        .unwrap_or_default();
    Some(claim(
        format!("boot.authorities[{index}]"),
        ClaimValue::Text(text),
        data_status(log, event, &[variable_only]),
        event,
    ))
}

fn certificate_summary(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    match x509_parser::certificate::X509Certificate::from_der(der) {
        Ok((_, cert)) => format!(
            "subject={}; issuer={}; serial={}; sha256={}",
            cert.subject(),
            cert.issuer(),
            cert.raw_serial_as_string(),
            sha256_hex(der)
        ),
        Err(_) => format!("unparsable certificate sha256={}", sha256_hex(der)),
    }
}

fn boot_variable_claims(log: &EventLog, event: &Event, out: &mut Vec<Claim>) {
    let Some(variable) = VariableData::parse(&event.data) else {
        return;
    };
    // Firmware differs: the digest covers the whole UEFI_VARIABLE_DATA or only the value.
    let status = data_status(log, event, &[variable.data]);
    if variable.name == "BootOrder" {
        let order: Vec<String> = variable
            .data
            .chunks_exact(2)
            .map(|c| format!("Boot{:04X}", u16::from_le_bytes([c[0], c[1]])))
            .collect();
        out.push(claim(
            "boot.boot_order",
            ClaimValue::List(order),
            status,
            event,
        ));
    } else if variable.name.len() == 8 && variable.name.starts_with("Boot") {
        // EFI_LOAD_OPTION: attributes u32, file path list length u16, description (UTF-16, NUL).
        let description = variable.data.get(6..).map(|rest| {
            let units: Vec<u16> = rest
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|u| *u != 0)
                .collect();
            String::from_utf16_lossy(&units)
        });
        if let Some(description) = description {
            out.push(claim(
                format!("boot.entries.{}.description", variable.name),
                ClaimValue::Text(description),
                status,
                event,
            ));
        }
    }
}

fn ipl_claims(log: &EventLog, event: &Event, out: &mut Vec<Claim>) {
    let Some(text) = printable(&event.data) else {
        return;
    };
    // GRUB logs "grub_cmd: <command>" / "kernel_cmdline: <cmdline>" but measures only the
    // part after the prefix, without the trailing NUL it logs.
    let without_nul = event.data.strip_suffix(&[0]).unwrap_or(&event.data);
    let unprefixed = ["grub_cmd: ", "kernel_cmdline: ", "module_cmdline: "]
        .iter()
        .find_map(|prefix| without_nul.strip_prefix(prefix.as_bytes()))
        .unwrap_or(without_nul);
    let status = data_status(log, event, &[without_nul, unprefixed]);
    // Red Hat's GRUB writes "grub_cmd linux …" and "grub_kernel_cmdline …" (a space, no
    // colon) and measures the whole string with its NUL.
    let (name, value) = if let Some(cmdline) = text
        .strip_prefix("kernel_cmdline: ")
        .or_else(|| text.strip_prefix("grub_kernel_cmdline "))
    {
        ("boot.kernel_cmdline", cmdline.to_owned())
    } else if event.pcr == 12 && (text.contains("initrd=") || text.contains("root=")) {
        ("boot.kernel_cmdline", text.clone())
    } else if let Some(command) = text
        .strip_prefix("grub_cmd: ")
        .or_else(|| text.strip_prefix("grub_cmd "))
    {
        if command.starts_with("linux") || command.starts_with("initrd") {
            let kind = if command.starts_with("linux") {
                "boot.grub.linux"
            } else {
                "boot.grub.initrd"
            };
            (kind, command.to_owned())
        } else {
            return;
        }
    } else {
        return;
    };
    out.push(claim(name, ClaimValue::Text(value), status, event));
}

/// The file path of an UEFI_IMAGE_LOAD_EVENT's device path (media file path nodes).
fn image_file_path(data: &[u8]) -> Option<String> {
    let length = usize::try_from(u64::from_le_bytes(data.get(24..32)?.try_into().ok()?)).ok()?;
    let mut path = data.get(32..32usize.checked_add(length)?)?;
    let mut parts = Vec::new();
    while path.len() >= 4 {
        let (node_type, subtype) = (*path.first()?, *path.get(1)?);
        let node_len = usize::from(u16::from_le_bytes([*path.get(2)?, *path.get(3)?]));
        if node_len < 4 || node_type == 0x7f {
            break;
        }
        let body = path.get(4..node_len)?;
        if node_type == 4 && subtype == 4 {
            let units: Vec<u16> = body
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|u| *u != 0)
                .collect();
            parts.push(String::from_utf16_lossy(&units));
        }
        path = path.get(node_len..)?;
    }
    (!parts.is_empty()).then(|| parts.join(""))
}

/// Disk GUID and partition count of a UEFI_GPT_DATA.
fn gpt_summary(data: &[u8]) -> Option<(String, u64)> {
    let guid: [u8; 16] = data.get(56..72)?.try_into().ok()?;
    let header_size =
        usize::try_from(u32::from_le_bytes(data.get(12..16)?.try_into().ok()?)).ok()?;
    let count = u64::from_le_bytes(data.get(header_size..header_size + 8)?.try_into().ok()?);
    Some((guid_string(&guid), count))
}

/// Claims from events on PCRs the quote does not cover are not proven by anything: the
/// TPM never vouched for those extends. Their status becomes unverifiable (a failed claim
/// stays failed).
pub fn bind_to_quote(
    claims: Vec<Claim>,
    quoted_pcrs: &std::collections::BTreeSet<u32>,
) -> Vec<Claim> {
    claims
        .into_iter()
        .map(|mut claim| {
            let pcr = claim.provenance.pcr;
            if !quoted_pcrs.contains(&pcr) && !matches!(claim.status, ClaimStatus::Failed(_)) {
                claim.status = ClaimStatus::Unverifiable(format!(
                    "PCR {pcr} is not in the quote: nothing proves event {} was measured",
                    claim.provenance.event
                ));
            }
            claim
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::eventlog::{compare, parse, replay};

    /// A crypto-agile log with a sha256 bank: header, then (pcr, type, digest, data) events.
    fn agile_log(events: &[(u32, u32, Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut spec = b"Spec ID Event03\0".to_vec();
        spec.extend(0u32.to_le_bytes()); // platform class
        spec.extend([0, 2, 0, 2]); // version 2.0, errata 0, uintnSize 2
        spec.extend(1u32.to_le_bytes());
        spec.extend(0x000bu16.to_le_bytes());
        spec.extend(32u16.to_le_bytes());
        spec.push(0); // no vendor info
        let mut log = Vec::new();
        log.extend(0u32.to_le_bytes());
        log.extend(3u32.to_le_bytes());
        log.extend([0u8; 20]);
        log.extend((spec.len() as u32).to_le_bytes());
        log.extend(spec);
        for (pcr, kind, digest, data) in events {
            log.extend(pcr.to_le_bytes());
            log.extend(kind.to_le_bytes());
            log.extend(1u32.to_le_bytes());
            log.extend(0x000bu16.to_le_bytes());
            log.extend(digest);
            log.extend((data.len() as u32).to_le_bytes());
            log.extend(data);
        }
        log
    }

    fn variable(name: &str, value: &[u8]) -> Vec<u8> {
        let units: Vec<u16> = name.encode_utf16().collect();
        let mut data = vec![0x61u8; 16];
        data.extend((units.len() as u64).to_le_bytes());
        data.extend((value.len() as u64).to_le_bytes());
        for unit in units {
            data.extend(unit.to_le_bytes());
        }
        data.extend(value);
        data
    }

    fn sha256(data: &[u8]) -> Vec<u8> {
        HashAlg::Sha256.digest(data).unwrap()
    }

    fn find<'a>(claims: &'a [Claim], name: &str) -> &'a Claim {
        claims
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} in {claims:#?}"))
    }

    #[test]
    fn a_variable_that_hashes_to_its_digest_is_verified() {
        let data = variable("SecureBoot", &[1]);
        let log = parse(&agile_log(&[(
            7,
            EV_EFI_VARIABLE_DRIVER_CONFIG,
            sha256(&data),
            data,
        )]))
        .unwrap();
        let claims = claims(&log);
        let secure_boot = find(&claims, "boot.secure_boot.enabled");
        assert_eq!(secure_boot.value, ClaimValue::Bool(true));
        assert_eq!(secure_boot.status, ClaimStatus::Verified);
        assert_eq!(secure_boot.provenance.event, 1);
        assert_eq!(secure_boot.provenance.pcr, 7);
    }

    #[test]
    fn grub_command_lines_in_both_spellings_are_claimed_and_checked() {
        // Upstream GRUB: "kernel_cmdline: …", measured without prefix and NUL.
        // Red Hat's GRUB: "grub_kernel_cmdline …" / "grub_cmd linux …", measured whole, NUL included.
        let upstream = b"kernel_cmdline: root=/dev/sda1 ro\0".to_vec();
        let redhat = b"grub_kernel_cmdline (hd0,gpt2)/vmlinuz root=UUID=f3 ro\0".to_vec();
        let linux = b"grub_cmd linux (hd0,gpt2)/vmlinuz root=UUID=f3 ro\0".to_vec();
        let log = parse(&agile_log(&[
            (8, EV_IPL, sha256(b"root=/dev/sda1 ro"), upstream),
            (8, EV_IPL, sha256(&redhat), redhat.clone()),
            (8, EV_IPL, sha256(&linux), linux),
            (8, EV_IPL, sha256(b"something else"), redhat),
        ]))
        .unwrap();
        let claims = claims(&log);
        let lines: Vec<(&ClaimValue, &ClaimStatus)> = claims
            .iter()
            .filter(|c| c.name == "boot.kernel_cmdline")
            .map(|c| (&c.value, &c.status))
            .collect();
        assert_eq!(lines.len(), 3, "{claims:#?}");
        assert_eq!(
            lines[0],
            (
                &ClaimValue::Text("root=/dev/sda1 ro".into()),
                &ClaimStatus::Verified
            )
        );
        assert_eq!(
            lines[1],
            (
                &ClaimValue::Text("(hd0,gpt2)/vmlinuz root=UUID=f3 ro".into()),
                &ClaimStatus::Verified
            )
        );
        assert!(
            matches!(lines[2].1, ClaimStatus::Failed(_)),
            "{:?}",
            lines[2]
        );
        let linux = find(&claims, "boot.grub.linux");
        assert_eq!(
            linux.value,
            ClaimValue::Text("linux (hd0,gpt2)/vmlinuz root=UUID=f3 ro".into())
        );
        assert_eq!(linux.status, ClaimStatus::Verified);
    }

    #[test]
    fn secure_boot_authorities_are_claimed_never_skipped() {
        let mut signature_data = vec![0x77u8; 16]; // owner GUID
        signature_data.extend([0xabu8; 32]); // a db SHA-256 entry
        let db = variable("db", &signature_data);
        let sbat = variable("SbatLevel", b"sbat,1,2021030218\n");
        // Firmware that logs bytes after the variable: reported, and checked as logged.
        let mut trailing = variable("db", &signature_data);
        trailing.extend([0u8; 6]);
        let log = parse(&agile_log(&[
            (7, EV_EFI_VARIABLE_AUTHORITY, sha256(&db), db.clone()),
            (7, EV_EFI_VARIABLE_AUTHORITY, sha256(&sbat), sbat),
            (7, EV_EFI_VARIABLE_AUTHORITY, sha256(&trailing), trailing),
            (7, EV_EFI_VARIABLE_AUTHORITY, sha256(b"other"), db),
        ]))
        .unwrap();
        let claims = claims(&log);
        let authorities: Vec<&Claim> = claims
            .iter()
            .filter(|c| c.name.starts_with("boot.authorities["))
            .collect();
        assert_eq!(authorities.len(), 4, "{claims:#?}");
        assert_eq!(
            authorities[0].value,
            ClaimValue::Text(format!("db: hash={}", "ab".repeat(32)))
        );
        assert_eq!(authorities[0].status, ClaimStatus::Verified);
        assert_eq!(
            authorities[1].value,
            ClaimValue::Text("SbatLevel: value \"sbat,1,2021030218\"".into())
        );
        assert!(
            matches!(&authorities[2].value, ClaimValue::Text(t) if t.ends_with("(6 bytes after the variable)"))
        );
        assert_eq!(authorities[2].status, ClaimStatus::Verified);
        assert!(matches!(authorities[3].status, ClaimStatus::Failed(_)));
    }

    #[test]
    fn a_variable_whose_data_was_swapped_is_a_failed_claim() {
        // The firmware measured "Secure Boot off"; the log's data says "on".
        let measured = variable("SecureBoot", &[0]);
        let shown = variable("SecureBoot", &[1]);
        let log = parse(&agile_log(&[(
            7,
            EV_EFI_VARIABLE_DRIVER_CONFIG,
            sha256(&measured),
            shown,
        )]))
        .unwrap();
        let claims = claims(&log);
        let secure_boot = find(&claims, "boot.secure_boot.enabled");
        assert!(
            matches!(&secure_boot.status, ClaimStatus::Failed(why) if why.contains("event 1")),
            "{secure_boot:?}"
        );
    }

    #[test]
    fn separators_and_exit_boot_services_are_claimed_and_replayed() {
        let separator = vec![0u8; 4];
        let action = b"Exit Boot Services Invocation".to_vec();
        let log = parse(&agile_log(&[
            (7, EV_SEPARATOR, sha256(&separator), separator.clone()),
            (5, EV_EFI_ACTION, sha256(&action), action.clone()),
        ]))
        .unwrap();
        let claims = claims(&log);
        assert_eq!(
            find(&claims, "boot.separators.pcr7").value,
            ClaimValue::Text("normal".into())
        );
        assert_eq!(
            find(&claims, "boot.exit_boot_services").status,
            ClaimStatus::Verified
        );
        // The replay extends PCR 7 once: SHA-256(zeros || SHA-256(separator)).
        let replayed = replay(&log);
        let expected = sha256(&[vec![0u8; 32], sha256(&separator)].concat());
        assert_eq!(replayed.banks[&HashAlg::Sha256][&7], expected);
        let mut quoted = std::collections::BTreeMap::new();
        quoted.insert(
            HashAlg::Sha256,
            std::collections::BTreeMap::from([(7, vec![0u8; 32])]),
        );
        let mismatches = compare(&replayed, &quoted, &[]);
        assert_eq!(mismatches.len(), 1);
        assert_eq!(mismatches[0].events, vec![1]);
    }

    #[test]
    fn claims_from_a_pcr_outside_the_quote_are_not_proven() {
        let data = variable("SecureBoot", &[1]);
        let log = parse(&agile_log(&[(
            7,
            EV_EFI_VARIABLE_DRIVER_CONFIG,
            sha256(&data),
            data,
        )]))
        .unwrap();
        let quoted: std::collections::BTreeSet<u32> = [0, 1, 2, 3, 4, 5, 6].into();
        let bound = bind_to_quote(claims(&log), &quoted);
        let secure_boot = find(&bound, "boot.secure_boot.enabled");
        assert!(
            matches!(&secure_boot.status, ClaimStatus::Unverifiable(why) if why.contains("PCR 7"))
        );
        let quoted: std::collections::BTreeSet<u32> = (0..=7).collect();
        let bound = bind_to_quote(claims(&log), &quoted);
        assert_eq!(
            find(&bound, "boot.secure_boot.enabled").status,
            ClaimStatus::Verified
        );
    }

    #[test]
    fn oversized_lengths_are_errors_with_offsets() {
        let mut log = agile_log(&[(7, EV_SEPARATOR, sha256(&[0; 4]), vec![0; 4])]);
        let size_at = log.len() - 8;
        log[size_at..size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let error = parse(&log).unwrap_err();
        assert!(
            error.to_string().contains(&format!("offset {size_at}")),
            "{error}"
        );
        assert!(error.to_string().contains("event 1"), "{error}");
    }
}
