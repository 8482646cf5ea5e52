//! A measured-boot log shaped like UEFI firmware + shim + GRUB write it (TCG PC Client
//! crypto-agile format, SHA-256 bank only), and the PCR values its replay gives. Every
//! simulated host boots the same golden image, so one baseline fits them all.

use ring::digest::{SHA256, digest};

const EV_SEPARATOR: u32 = 0x4;
const EV_S_CRTM_VERSION: u32 = 0x8;
const EV_PLATFORM_CONFIG_FLAGS: u32 = 0xa;
const EV_IPL: u32 = 0xd;
const EV_NO_ACTION: u32 = 0x3;
const EV_EFI_VARIABLE_DRIVER_CONFIG: u32 = 0x8000_0001;
const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
const EV_EFI_BOOT_SERVICES_DRIVER: u32 = 0x8000_0004;
const EV_EFI_ACTION: u32 = 0x8000_0007;
const EV_EFI_PLATFORM_FIRMWARE_BLOB: u32 = 0x8000_0008;

/// The kernel command line GRUB measures into PCR 8.
pub const KERNEL_CMDLINE: &str =
    "BOOT_IMAGE=/vmlinuz-6.8.0-45-generic root=UUID=4f1c0d2e ro quiet splash";

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The log and the SHA-256 PCR values (0..24) after replaying it.
pub struct BootLog {
    pub data: Vec<u8>,
    pub pcrs: [[u8; 32]; 24],
}

struct Event {
    pcr: u32,
    event_type: u32,
    digest: [u8; 32],
    data: Vec<u8>,
}

impl Event {
    /// An event whose digest is the hash of its own data (what a verifier can recheck).
    fn hashed(pcr: u32, event_type: u32, data: Vec<u8>) -> Event {
        Event {
            pcr,
            event_type,
            digest: sha256(&data),
            data,
        }
    }
}

/// UEFI_IMAGE_LOAD_EVENT without a device path: location, length, link-time address, 0.
fn image_load_event(location: u64, length: u64) -> Vec<u8> {
    let mut data = Vec::with_capacity(32);
    for v in [location, length, 0, 0] {
        data.extend_from_slice(&v.to_le_bytes());
    }
    data
}

/// UEFI_VARIABLE_DATA: GUID, name length (chars), data length, UCS-2 name, data.
fn variable_data(guid: [u8; 16], name: &str, value: &[u8]) -> Vec<u8> {
    let name_ucs2 = ucs2(name);
    let mut data = guid.to_vec();
    data.extend_from_slice(&(name.encode_utf16().count() as u64).to_le_bytes());
    data.extend_from_slice(&(value.len() as u64).to_le_bytes());
    data.extend_from_slice(&name_ucs2);
    data.extend_from_slice(value);
    data
}

/// EFI_GLOBAL_VARIABLE {8BE4DF61-93CA-11D2-AA0D-00E098032B8C} in its in-memory byte order.
const EFI_GLOBAL_VARIABLE: [u8; 16] = [
    0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c,
];

pub fn golden_boot() -> BootLog {
    let mut events = vec![
        Event::hashed(0, EV_S_CRTM_VERSION, ucs2("2.19.1\0")),
        Event {
            pcr: 0,
            event_type: EV_EFI_PLATFORM_FIRMWARE_BLOB,
            digest: sha256(b"loadgen: firmware volume FV_MAIN"),
            data: [0xffc0_0000u64, 0x0040_0000u64]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        },
        Event::hashed(
            1,
            EV_PLATFORM_CONFIG_FLAGS,
            b"loadgen platform config v1".to_vec(),
        ),
        Event {
            pcr: 2,
            event_type: EV_EFI_BOOT_SERVICES_DRIVER,
            digest: sha256(b"loadgen: option ROM (NIC UEFI driver)"),
            data: image_load_event(0x7e00_0000, 0x0002_0000),
        },
        Event::hashed(
            7,
            EV_EFI_VARIABLE_DRIVER_CONFIG,
            variable_data(EFI_GLOBAL_VARIABLE, "SecureBoot", &[1]),
        ),
    ];
    for pcr in 0..=7 {
        events.push(Event::hashed(pcr, EV_SEPARATOR, vec![0; 4]));
    }
    events.push(Event {
        pcr: 4,
        event_type: EV_EFI_BOOT_SERVICES_APPLICATION,
        digest: sha256(b"loadgen: shimx64.efi"),
        data: image_load_event(0x7c00_0000, 0x000e_b000),
    });
    events.push(Event {
        pcr: 4,
        event_type: EV_EFI_BOOT_SERVICES_APPLICATION,
        digest: sha256(b"loadgen: grubx64.efi"),
        data: image_load_event(0x7b00_0000, 0x0026_2000),
    });
    let kernel = format!("kernel_cmdline: {KERNEL_CMDLINE}\0").into_bytes();
    events.push(Event {
        pcr: 8,
        event_type: EV_IPL,
        digest: sha256(format!("{KERNEL_CMDLINE}\0").as_bytes()),
        data: kernel,
    });
    events.push(Event {
        pcr: 9,
        event_type: EV_IPL,
        digest: sha256(b"loadgen: vmlinuz-6.8.0-45-generic contents"),
        data: b"/boot/vmlinuz-6.8.0-45-generic\0".to_vec(),
    });
    events.push(Event {
        pcr: 5,
        event_type: EV_EFI_ACTION,
        digest: sha256(b"Exit Boot Services Invocation"),
        data: b"Exit Boot Services Invocation".to_vec(),
    });

    // Header: a TCG_PCR_EVENT (SHA-1 format) carrying the TCG_EfiSpecIdEvent.
    let mut spec = b"Spec ID Event03\0".to_vec();
    spec.extend_from_slice(&0u32.to_le_bytes()); // platformClass
    spec.extend_from_slice(&[0, 2, 0, 2]); // minor, major, errata, uintnSize (64-bit)
    spec.extend_from_slice(&1u32.to_le_bytes());
    spec.extend_from_slice(&0x000bu16.to_le_bytes());
    spec.extend_from_slice(&32u16.to_le_bytes());
    spec.push(0); // vendorInfoSize
    let mut data = Vec::with_capacity(4096);
    data.extend_from_slice(&0u32.to_le_bytes());
    data.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
    data.extend_from_slice(&[0u8; 20]);
    data.extend_from_slice(&(spec.len() as u32).to_le_bytes());
    data.extend_from_slice(&spec);

    let mut pcrs = [[0u8; 32]; 24];
    for event in &events {
        data.extend_from_slice(&event.pcr.to_le_bytes());
        data.extend_from_slice(&event.event_type.to_le_bytes());
        data.extend_from_slice(&1u32.to_le_bytes());
        data.extend_from_slice(&0x000bu16.to_le_bytes());
        data.extend_from_slice(&event.digest);
        data.extend_from_slice(&(event.data.len() as u32).to_le_bytes());
        data.extend_from_slice(&event.data);
        if let Some(pcr) = pcrs.get_mut(event.pcr as usize) {
            let mut input = pcr.to_vec();
            input.extend_from_slice(&event.digest);
            *pcr = sha256(&input);
        }
    }
    BootLog { data, pcrs }
}
