//! Event logs for people (`vigil eventlog show`) and scripts (`--json`).

use serde::Serialize;

use super::parse::{EventLog, LogFormat};
use super::replay::Replay;
use crate::evidence::tpm::HashAlg;

/// The TCG name of an event type.
pub fn event_type_name(event_type: u32) -> String {
    let name = match event_type {
        0x0000_0000 => "EV_PREBOOT_CERT",
        0x0000_0001 => "EV_POST_CODE",
        0x0000_0002 => "EV_UNUSED",
        0x0000_0003 => "EV_NO_ACTION",
        0x0000_0004 => "EV_SEPARATOR",
        0x0000_0005 => "EV_ACTION",
        0x0000_0006 => "EV_EVENT_TAG",
        0x0000_0007 => "EV_S_CRTM_CONTENTS",
        0x0000_0008 => "EV_S_CRTM_VERSION",
        0x0000_0009 => "EV_CPU_MICROCODE",
        0x0000_000a => "EV_PLATFORM_CONFIG_FLAGS",
        0x0000_000b => "EV_TABLE_OF_DEVICES",
        0x0000_000c => "EV_COMPACT_HASH",
        0x0000_000d => "EV_IPL",
        0x0000_000e => "EV_IPL_PARTITION_DATA",
        0x0000_000f => "EV_NONHOST_CODE",
        0x0000_0010 => "EV_NONHOST_CONFIG",
        0x0000_0011 => "EV_NONHOST_INFO",
        0x0000_0012 => "EV_OMIT_BOOT_DEVICE_EVENTS",
        0x0000_0013 => "EV_POST_CODE2",
        0x8000_0000 => "EV_EFI_EVENT_BASE",
        0x8000_0001 => "EV_EFI_VARIABLE_DRIVER_CONFIG",
        0x8000_0002 => "EV_EFI_VARIABLE_BOOT",
        0x8000_0003 => "EV_EFI_BOOT_SERVICES_APPLICATION",
        0x8000_0004 => "EV_EFI_BOOT_SERVICES_DRIVER",
        0x8000_0005 => "EV_EFI_RUNTIME_SERVICES_DRIVER",
        0x8000_0006 => "EV_EFI_GPT_EVENT",
        0x8000_0007 => "EV_EFI_ACTION",
        0x8000_0008 => "EV_EFI_PLATFORM_FIRMWARE_BLOB",
        0x8000_0009 => "EV_EFI_HANDOFF_TABLES",
        0x8000_000a => "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        0x8000_000b => "EV_EFI_HANDOFF_TABLES2",
        0x8000_000c => "EV_EFI_VARIABLE_BOOT2",
        0x8000_000d => "EV_EFI_GPT_EVENT2",
        0x8000_0010 => "EV_EFI_HCRTM_EVENT",
        0x8000_00e0 => "EV_EFI_VARIABLE_AUTHORITY",
        0x8000_00e1 => "EV_EFI_SPDM_FIRMWARE_BLOB",
        0x8000_00e2 => "EV_EFI_SPDM_FIRMWARE_CONFIG",
        other => return format!("0x{other:08x}"),
    };
    name.to_owned()
}

/// A short human description of the event data: text where it is text, the UEFI variable
/// name for variable events, otherwise a hex prefix.
pub fn describe_data(event_type: u32, data: &[u8]) -> String {
    if matches!(
        event_type,
        0x8000_0001 | 0x8000_0002 | 0x8000_000c | 0x8000_00e0
    ) && let Some(variable) = super::uefi::VariableData::parse(data)
    {
        return format!("{} ({} bytes of data)", variable.name, variable.data.len());
    }
    if event_type == super::parse::EV_NO_ACTION {
        if let Some(locality) = super::replay::startup_locality(event_type, data) {
            return format!("StartupLocality: {locality}");
        }
        if data.starts_with(b"Spec ID Event03\0") {
            return "Spec ID Event03 (crypto-agile log header)".to_owned();
        }
        if data.starts_with(b"SP800-155 Event") {
            return "SP800-155 reference manifest event".to_owned();
        }
    }
    if let Some(text) = printable(data) {
        return text;
    }
    let prefix: String = hex::encode(data.get(..32).unwrap_or(data));
    if data.len() > 32 {
        format!("{prefix}… ({} bytes)", data.len())
    } else {
        prefix
    }
}

/// Data that is printable ASCII or UTF-16LE text (NUL-terminated or not), as a string.
pub fn printable(data: &[u8]) -> Option<String> {
    let trimmed = data.strip_suffix(&[0]).unwrap_or(data);
    if !trimmed.is_empty()
        && trimmed
            .iter()
            .all(|b| (0x20..0x7f).contains(b) || *b == b'\n' || *b == b'\t')
    {
        return Some(String::from_utf8_lossy(trimmed).into_owned());
    }
    if data.len() >= 4 && data.len().is_multiple_of(2) {
        let units: Vec<u16> = data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let units = units.strip_suffix(&[0]).unwrap_or(&units);
        if !units.is_empty() && units.iter().all(|u| (0x20..0x7f).contains(u)) {
            return Some(String::from_utf16_lossy(units));
        }
    }
    None
}

#[derive(Debug, Serialize)]
pub struct EventView {
    pub number: usize,
    pub offset: usize,
    pub pcr: u32,
    pub event_type: String,
    pub digests: std::collections::BTreeMap<String, String>,
    pub data_size: usize,
    pub description: String,
}

#[derive(Debug, Serialize)]
pub struct LogView {
    pub format: LogFormat,
    pub algorithms: Vec<String>,
    pub events: Vec<EventView>,
}

fn algorithm_name(id: u16) -> String {
    HashAlg::from_id(id).map_or_else(|| format!("0x{id:04x}"), |h| h.name().to_owned())
}

pub fn view(log: &EventLog) -> LogView {
    LogView {
        format: log.format,
        algorithms: log
            .algorithms
            .iter()
            .map(|a| algorithm_name(a.id))
            .collect(),
        events: log
            .events
            .iter()
            .map(|e| EventView {
                number: e.number,
                offset: e.offset,
                pcr: e.pcr,
                event_type: event_type_name(e.event_type),
                digests: e
                    .digests
                    .iter()
                    .map(|(id, d)| (algorithm_name(*id), hex::encode(d)))
                    .collect(),
                data_size: e.data.len(),
                description: describe_data(e.event_type, &e.data),
            })
            .collect(),
    }
}

/// One block per event, like `tpm2_eventlog`.
pub fn render_text(log: &EventLog) -> String {
    let view = view(log);
    let mut out = format!(
        "format: {}\nalgorithms: {}\nevents: {}\n",
        match view.format {
            LogFormat::Sha1 => "SHA-1 (TCG_PCR_EVENT)",
            LogFormat::CryptoAgile => "crypto-agile (TCG_PCR_EVENT2)",
        },
        view.algorithms.join(", "),
        view.events.len()
    );
    for event in &view.events {
        let pcr = if event.pcr == u32::MAX {
            "none (0xFFFFFFFF)".to_owned()
        } else {
            event.pcr.to_string()
        };
        out.push_str(&format!(
            "\nevent {} (offset {}):\n  pcr:    {pcr}\n  type:   {}\n",
            event.number, event.offset, event.event_type
        ));
        for (alg, digest) in &event.digests {
            out.push_str(&format!("  {alg:<7} {digest}\n"));
        }
        out.push_str(&format!(
            "  data:   {} bytes: {}\n",
            event.data_size, event.description
        ));
    }
    out
}

impl Replay {
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        if let Some(locality) = self.startup_locality {
            out.push_str(&format!("startup locality: {locality}\n"));
        }
        for (bank, pcrs) in &self.banks {
            out.push_str(&format!("{}:\n", bank.name()));
            for (pcr, value) in pcrs {
                out.push_str(&format!("  {pcr:>2}: {}\n", hex::encode(value)));
            }
        }
        for id in &self.not_replayed {
            out.push_str(&format!(
                "algorithm {} is in the log but not replayed (unsupported)\n",
                algorithm_name(*id)
            ));
        }
        out
    }
}
