//! AMD Instinct GPUs through amdsmi (`libamd_smi.so`), opened at run time. amdsmi has no
//! device attestation: every GPU is sent as a host-reported inventory (kind "host-reported",
//! format "amdsmi-inventory"): market name, UUID, board serial, VBIOS/IFWI name, part number
//! and version, driver version, and the firmware list `amd-smi firmware` prints.
//!
//! Struct layouts follow ROCm's `amdsmi.h` for library major version 26 (ROCm 7.x:
//! `AMDSMI_MAX_STRING_LENGTH` 256, `amdsmi_vbios_info_t` with `boot_firmware`,
//! `AMDSMI_FW_ID__MAX` 80). The header says the major version changes with every ABI break,
//! so the collector asks `amdsmi_get_lib_version` first and reads no struct from a library of
//! another major version (said once, no AMD devices). Each struct is passed with 4 KiB of
//! zeroed slack behind it, and every count and string the library returns is checked against
//! the buffer it lives in.

use std::ffi::{c_char, c_uint, c_void};
use std::path::Path;

use vigil_proto::v1::{FirmwareVersion, GpuEvidence};

use crate::gpu::{MAX_DEVICES, MAX_FIRMWARE, bound_devices, c_pointer_string, c_string, symbol};
use crate::nvml::Collection;

type Status = u32;
type Handle = *mut c_void;
const SUCCESS: Status = 0;
/// `AMDSMI_INIT_AMD_GPUS`.
const INIT_AMD_GPUS: u64 = 1 << 1;
/// The amdsmi major version whose struct layouts this module has.
pub const KNOWN_MAJOR: u32 = 26;
/// `AMDSMI_MAX_STRING_LENGTH` in that version.
const STRING: usize = 256;
/// `AMDSMI_FW_ID__MAX` in that version: the length of `fw_info_list`.
const FW_ID_MAX: usize = 80;
/// Sockets asked for (each holds one or more GPUs).
const MAX_SOCKETS: usize = 64;

#[repr(C)]
struct Version {
    major: u32,
    minor: u32,
    release: u32,
    build: *const c_char,
}

#[repr(C)]
struct VbiosInfo {
    name: [u8; STRING],
    build_date: [u8; STRING],
    part_number: [u8; STRING],
    version: [u8; STRING],
    boot_firmware: [u8; STRING],
    reserved: [u64; 36],
}

#[repr(C)]
struct AsicInfo {
    market_name: [u8; STRING],
    vendor_id: u32,
    vendor_name: [u8; STRING],
    subvendor_id: u32,
    device_id: u64,
    rev_id: u32,
    asic_serial: [u8; STRING],
    oam_id: u32,
    num_of_compute_units: u32,
    target_graphics_version: u64,
    subsystem_id: u32,
    reserved: [u32; 21],
}

#[repr(C)]
struct BoardInfo {
    model_number: [u8; STRING],
    product_serial: [u8; STRING],
    fru_id: [u8; STRING],
    product_name: [u8; STRING],
    manufacturer_name: [u8; STRING],
    reserved: [u64; 64],
}

#[repr(C)]
struct DriverInfo {
    driver_version: [u8; STRING],
    driver_date: [u8; STRING],
    driver_name: [u8; STRING],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct FwEntry {
    fw_id: u32,
    fw_version: u64,
    reserved: [u64; 2],
}

#[repr(C)]
struct FwInfo {
    num_fw_info: u8,
    fw_info_list: [FwEntry; FW_ID_MAX],
    reserved: [u32; 7],
}

/// A struct the library fills, zeroed, with slack behind it in case the library writes more
/// than the header says.
#[repr(C)]
struct Padded<T> {
    value: T,
    slack: [u8; 4096],
}

fn zeroed<T>() -> Box<Padded<T>> {
    // SAFETY: every `T` here is plain old data (integers, byte arrays, a nullable pointer),
    // for which all-zero bytes are a valid value.
    unsafe { Box::new(std::mem::zeroed()) }
}

/// VBIOS (IFWI on MI3xx) identification.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vbios {
    pub name: String,
    pub build_date: String,
    pub part_number: String,
    pub version: String,
}

/// What `amdsmi_get_fw_info` reported: its count, and the entries that fit its array.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Firmware {
    pub reported: usize,
    /// (`amdsmi_fw_block_t`, raw version)
    pub entries: Vec<(u32, u64)>,
}

/// What the collector needs from amdsmi; a fake implements it in tests.
pub trait AmdSmiQuery {
    /// How many GPUs the library reports (may exceed what is read).
    fn gpu_count(&self) -> Result<u32, String>;
    fn uuid(&self, index: u32) -> Result<String, String>;
    /// (market name, ASIC serial)
    fn asic(&self, index: u32) -> Result<(String, String), String>;
    /// (product name, product serial)
    fn board(&self, index: u32) -> Result<(String, String), String>;
    fn vbios(&self, index: u32) -> Result<Vbios, String>;
    fn firmware(&self, index: u32) -> Result<Firmware, String>;
    fn driver_version(&self, index: u32) -> Result<String, String>;
}

/// `amdsmi_fw_block_t` names as `amd-smi firmware` prints them (the header's enum names
/// without `AMDSMI_FW_ID_`), indexed by value; 0 is unused.
const FW_NAMES: [&str; FW_ID_MAX] = [
    "",
    "SMU",
    "CP_CE",
    "CP_PFP",
    "CP_ME",
    "CP_MEC_JT1",
    "CP_MEC_JT2",
    "CP_MEC1",
    "CP_MEC2",
    "RLC",
    "SDMA0",
    "SDMA1",
    "SDMA2",
    "SDMA3",
    "SDMA4",
    "SDMA5",
    "SDMA6",
    "SDMA7",
    "VCN",
    "UVD",
    "VCE",
    "ISP",
    "DMCU_ERAM",
    "DMCU_ISR",
    "RLC_RESTORE_LIST_GPM_MEM",
    "RLC_RESTORE_LIST_SRM_MEM",
    "RLC_RESTORE_LIST_CNTL",
    "RLC_V",
    "MMSCH",
    "PSP_SYSDRV",
    "PSP_SOSDRV",
    "PSP_TOC",
    "PSP_KEYDB",
    "DFC",
    "PSP_SPL",
    "DRV_CAP",
    "MC",
    "PSP_BL",
    "CP_PM4",
    "RLC_P",
    "SEC_POLICY_STAGE2",
    "REG_ACCESS_WHITELIST",
    "IMU_DRAM",
    "IMU_IRAM",
    "SDMA_TH0",
    "SDMA_TH1",
    "CP_MES",
    "MES_KIQ",
    "MES_STACK",
    "MES_THREAD1",
    "MES_THREAD1_STACK",
    "RLX6",
    "RLX6_DRAM_BOOT",
    "RS64_ME",
    "RS64_ME_P0_DATA",
    "RS64_ME_P1_DATA",
    "RS64_PFP",
    "RS64_PFP_P0_DATA",
    "RS64_PFP_P1_DATA",
    "RS64_MEC",
    "RS64_MEC_P0_DATA",
    "RS64_MEC_P1_DATA",
    "RS64_MEC_P2_DATA",
    "RS64_MEC_P3_DATA",
    "PPTABLE",
    "PSP_SOC",
    "PSP_DBG",
    "PSP_INTF",
    "RLX6_CORE1",
    "RLX6_DRAM_BOOT_CORE1",
    "RLCV_LX7",
    "RLC_SAVE_RESTORE_LIST",
    "ASD",
    "TA_RAS",
    "TA_XGMI",
    "RLC_SRLG",
    "RLC_SRLS",
    "PM",
    "DMCU",
    "PLDM_BUNDLE",
];

/// The name of firmware block `id`; one this attester does not know is named by number.
pub fn firmware_name(id: u32) -> String {
    usize::try_from(id)
        .ok()
        .and_then(|i| FW_NAMES.get(i))
        .filter(|name| !name.is_empty())
        .map_or_else(|| format!("FW_ID_{id}"), |name| (*name).to_owned())
}

/// The version text `amd-smi firmware` prints: PSP/TA/VCN/UVD/VCE versions as dotted hex
/// bytes ("00.36.02.59"), PM (the SMC firmware) as dotted decimal bytes, others in decimal.
pub fn firmware_version_text(id: u32, version: u64) -> String {
    let hex = format!("{version:08x}");
    let pairs = || {
        hex.as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8_lossy(pair).into_owned())
    };
    match firmware_name(id).as_str() {
        "PSP_SOSDRV" | "TA_RAS" | "TA_XGMI" | "UVD" | "VCE" | "VCN" => {
            pairs().collect::<Vec<_>>().join(".")
        }
        "PM" => pairs()
            .map(|pair| {
                u8::from_str_radix(&pair, 16).map_or(pair.clone(), |byte| format!("{byte:02}"))
            })
            .collect::<Vec<_>>()
            .join("."),
        _ => version.to_string(),
    }
}

/// Collects every GPU amdsmi reports (at most `MAX_DEVICES`), indexed from `first_index`. A
/// GPU some of whose fields cannot be read is still listed with the rest.
pub fn collect_with(api: &dyn AmdSmiQuery, first_index: u32) -> Collection {
    let mut out = Collection::default();
    let count = match api.gpu_count() {
        Ok(count) => bound_devices(count, "amdsmi", &mut out.problems),
        Err(error) => {
            out.problems.push(format!("amdsmi: GPU count: {error}"));
            return out;
        }
    };
    for index in 0..count {
        let mut note = |what: &str, error: String| {
            out.problems
                .push(format!("amdsmi: GPU {index} {what}: {error}"));
        };
        let mut gpu = GpuEvidence {
            index: first_index.saturating_add(index),
            vendor: "amd".into(),
            kind: "host-reported".into(),
            format: "amdsmi-inventory".into(),
            ..Default::default()
        };
        match api.uuid(index) {
            Ok(uuid) => gpu.uuid = uuid,
            Err(error) => note("UUID", error),
        }
        let (mut product_name, mut asic_serial) = (String::new(), String::new());
        match api.asic(index) {
            Ok((name, serial)) => (gpu.name, asic_serial) = (name, serial),
            Err(error) => note("ASIC info", error),
        }
        match api.board(index) {
            Ok((name, serial)) => (product_name, gpu.serial) = (name, serial),
            Err(error) => note("board info", error),
        }
        if gpu.name.is_empty() {
            gpu.name = product_name;
        }
        if gpu.serial.is_empty() {
            gpu.serial = asic_serial;
        }
        match api.vbios(index) {
            Ok(vbios) => {
                gpu.vbios_version = vbios.version;
                gpu.part_number = vbios.part_number;
            }
            Err(error) => note("VBIOS info", error),
        }
        match api.driver_version(index) {
            Ok(version) => gpu.driver_version = version,
            Err(error) => note("driver info", error),
        }
        match api.firmware(index) {
            Ok(firmware) => {
                if firmware.reported > MAX_FIRMWARE {
                    note(
                        "firmware",
                        format!(
                            "{} entries reported; only {MAX_FIRMWARE} are read",
                            firmware.reported
                        ),
                    );
                }
                gpu.firmware = firmware
                    .entries
                    .iter()
                    .take(firmware.reported.min(MAX_FIRMWARE))
                    .map(|(id, version)| FirmwareVersion {
                        id: firmware_name(*id),
                        version: firmware_version_text(*id, *version),
                    })
                    .collect();
            }
            Err(error) => note("firmware", error),
        }
        out.gpus.push(gpu);
    }
    out
}

/// Opens amdsmi (the given path, or the system's) and collects; a host without it has no AMD
/// GPUs (said in `problems`).
pub fn collect(first_index: u32, library: Option<&Path>) -> Collection {
    match AmdSmi::open(library) {
        Ok(amdsmi) => collect_with(&amdsmi, first_index),
        Err(reason) => Collection {
            gpus: Vec::new(),
            problems: vec![format!("no AMD GPU: {reason}")],
        },
    }
}

/// The real amdsmi, opened with `dlopen`.
pub struct AmdSmi {
    library: libloading::Library,
    initialised: bool,
    /// Reported GPU count across sockets.
    reported: u32,
    /// Handles of the first `MAX_DEVICES` GPUs.
    handles: Vec<Handle>,
}

impl AmdSmi {
    pub fn open(path: Option<&Path>) -> Result<Self, String> {
        let library = crate::gpu::open_library(
            path,
            &["libamd_smi.so", "/opt/rocm/lib/libamd_smi.so"],
            "amdsmi",
        )?;
        let mut amdsmi = AmdSmi {
            library,
            initialised: false,
            reported: 0,
            handles: Vec::new(),
        };
        amdsmi.check_version()?;
        // SAFETY: `amdsmi_status_t amdsmi_init(uint64_t init_flags)`.
        let init: unsafe extern "C" fn(u64) -> Status =
            unsafe { symbol(&amdsmi.library, "amdsmi_init")? };
        let rc = unsafe { init(INIT_AMD_GPUS) };
        amdsmi.check("amdsmi_init", rc)?;
        amdsmi.initialised = true;
        amdsmi.enumerate()?;
        Ok(amdsmi)
    }

    fn check_version(&self) -> Result<(), String> {
        let mut version = zeroed::<Version>();
        // SAFETY: `amdsmi_status_t amdsmi_get_lib_version(amdsmi_version_t *version)`; the
        // struct has slack behind it should an older layout be longer.
        let rc = unsafe {
            let f: unsafe extern "C" fn(*mut Version) -> Status =
                symbol(&self.library, "amdsmi_get_lib_version")?;
            f(&mut version.value)
        };
        self.check("amdsmi_get_lib_version", rc)?;
        let v = &version.value;
        if v.major != KNOWN_MAJOR {
            return Err(format!(
                "amdsmi library version {}.{}.{} is not {KNOWN_MAJOR}.x, whose struct layouts this attester reads",
                v.major, v.minor, v.release
            ));
        }
        Ok(())
    }

    fn enumerate(&mut self) -> Result<(), String> {
        // SAFETY: signatures from amdsmi.h; each array's length is the count passed in.
        unsafe {
            let sockets_of: unsafe extern "C" fn(*mut u32, *mut Handle) -> Status =
                symbol(&self.library, "amdsmi_get_socket_handles")?;
            let processors_of: unsafe extern "C" fn(Handle, *mut u32, *mut Handle) -> Status =
                symbol(&self.library, "amdsmi_get_processor_handles")?;
            let mut sockets = vec![std::ptr::null_mut(); MAX_SOCKETS];
            let mut socket_count = MAX_SOCKETS as u32;
            let rc = sockets_of(&mut socket_count, sockets.as_mut_ptr());
            self.check("amdsmi_get_socket_handles", rc)?;
            let mut reported: u32 = 0;
            for socket in sockets
                .iter()
                .take((socket_count as usize).min(MAX_SOCKETS))
            {
                let mut processors = vec![std::ptr::null_mut(); MAX_DEVICES as usize];
                let mut count = MAX_DEVICES;
                let rc = processors_of(*socket, &mut count, processors.as_mut_ptr());
                self.check("amdsmi_get_processor_handles", rc)?;
                reported = reported.saturating_add(count);
                let room = (MAX_DEVICES as usize).saturating_sub(self.handles.len());
                let take = (count as usize).min(MAX_DEVICES as usize).min(room);
                self.handles.extend(processors.iter().take(take).copied());
            }
            // Sockets past those read hold at least one GPU each.
            self.reported = reported.max(socket_count);
        }
        Ok(())
    }

    fn error_string(&self, rc: Status) -> String {
        // SAFETY: `amdsmi_status_code_to_string(amdsmi_status_t, const char **)` points
        // `text` at a static string; it is read a bounded distance.
        let text = unsafe {
            symbol::<unsafe extern "C" fn(Status, *mut *const c_char) -> Status>(
                &self.library,
                "amdsmi_status_code_to_string",
            )
            .ok()
            .and_then(|f| {
                let mut text: *const c_char = std::ptr::null();
                (f(rc, &mut text) == SUCCESS)
                    .then(|| c_pointer_string(text))
                    .flatten()
            })
        };
        format!(
            "{} (status {rc})",
            text.unwrap_or_else(|| "unknown error".into())
        )
    }

    fn check(&self, function: &str, rc: Status) -> Result<(), String> {
        if rc == SUCCESS {
            Ok(())
        } else {
            Err(format!("{function}: {}", self.error_string(rc)))
        }
    }

    fn handle(&self, index: u32) -> Result<Handle, String> {
        self.handles
            .get(index as usize)
            .copied()
            .ok_or_else(|| format!("no processor handle for GPU {index}"))
    }

    /// Calls `function(handle, &mut T)` and returns the filled struct.
    fn info<T>(&self, index: u32, function: &str) -> Result<Box<Padded<T>>, String> {
        let handle = self.handle(index)?;
        let mut info = zeroed::<T>();
        // SAFETY: every `amdsmi_get_gpu_*_info`/`amdsmi_get_fw_info` used here takes
        // (amdsmi_processor_handle, T*) with T laid out as above (library major checked).
        let rc = unsafe {
            let f: unsafe extern "C" fn(Handle, *mut T) -> Status =
                symbol(&self.library, function)?;
            f(handle, &mut info.value)
        };
        self.check(function, rc)?;
        Ok(info)
    }
}

impl AmdSmiQuery for AmdSmi {
    fn gpu_count(&self) -> Result<u32, String> {
        Ok(self.reported)
    }

    fn uuid(&self, index: u32) -> Result<String, String> {
        let handle = self.handle(index)?;
        let mut buffer = [0u8; STRING];
        let mut length = STRING as c_uint;
        // SAFETY: `amdsmi_get_gpu_device_uuid(handle, unsigned int *uuid_length, char *uuid)`;
        // the buffer and its length agree.
        let rc = unsafe {
            let f: unsafe extern "C" fn(Handle, *mut c_uint, *mut c_char) -> Status =
                symbol(&self.library, "amdsmi_get_gpu_device_uuid")?;
            f(handle, &mut length, buffer.as_mut_ptr().cast())
        };
        self.check("amdsmi_get_gpu_device_uuid", rc)?;
        if length as usize > STRING {
            return Err(format!(
                "amdsmi_get_gpu_device_uuid reports {length} bytes in a {STRING}-byte buffer"
            ));
        }
        c_string(&buffer, "UUID")
    }

    fn asic(&self, index: u32) -> Result<(String, String), String> {
        let info = self.info::<AsicInfo>(index, "amdsmi_get_gpu_asic_info")?;
        Ok((
            c_string(&info.value.market_name, "ASIC market name")?,
            c_string(&info.value.asic_serial, "ASIC serial")?,
        ))
    }

    fn board(&self, index: u32) -> Result<(String, String), String> {
        let info = self.info::<BoardInfo>(index, "amdsmi_get_gpu_board_info")?;
        Ok((
            c_string(&info.value.product_name, "board product name")?,
            c_string(&info.value.product_serial, "board serial")?,
        ))
    }

    fn vbios(&self, index: u32) -> Result<Vbios, String> {
        let info = self.info::<VbiosInfo>(index, "amdsmi_get_gpu_vbios_info")?;
        let v = &info.value;
        Ok(Vbios {
            name: c_string(&v.name, "VBIOS name")?,
            build_date: c_string(&v.build_date, "VBIOS build date")?,
            part_number: c_string(&v.part_number, "VBIOS part number")?,
            version: c_string(&v.version, "VBIOS version")?,
        })
    }

    fn firmware(&self, index: u32) -> Result<Firmware, String> {
        let info = self.info::<FwInfo>(index, "amdsmi_get_fw_info")?;
        let reported = usize::from(info.value.num_fw_info);
        Ok(Firmware {
            reported,
            entries: info
                .value
                .fw_info_list
                .iter()
                .take(reported.min(FW_ID_MAX))
                .map(|entry| (entry.fw_id, entry.fw_version))
                .collect(),
        })
    }

    fn driver_version(&self, index: u32) -> Result<String, String> {
        let info = self.info::<DriverInfo>(index, "amdsmi_get_gpu_driver_info")?;
        c_string(&info.value.driver_version, "driver version")
    }
}

impl Drop for AmdSmi {
    fn drop(&mut self) {
        if self.initialised {
            // SAFETY: amdsmi was initialised in `open`; `amdsmi_shut_down(void)`.
            unsafe {
                if let Ok(f) =
                    symbol::<unsafe extern "C" fn() -> Status>(&self.library, "amdsmi_shut_down")
                {
                    f();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Eight MI300X-like GPUs whose answers each test sets.
    struct FakeAmdSmi {
        count: u32,
        failing: Option<u32>,
        firmware: Firmware,
    }

    impl AmdSmiQuery for FakeAmdSmi {
        fn gpu_count(&self) -> Result<u32, String> {
            Ok(self.count)
        }
        fn uuid(&self, index: u32) -> Result<String, String> {
            if self.failing == Some(index) {
                return Err("AMDSMI_STATUS_NOT_SUPPORTED".into());
            }
            Ok(format!("{index:02x}ff74a1-0000-1000-8000-000000000000"))
        }
        fn asic(&self, index: u32) -> Result<(String, String), String> {
            if self.failing == Some(index) {
                return Err("AMDSMI_STATUS_DRM_ERROR".into());
            }
            Ok(("AMD Instinct MI300X".into(), "0x7E8F7E20764E2714".into()))
        }
        fn board(&self, _: u32) -> Result<(String, String), String> {
            Ok((
                "Aqua Vanjaram [Instinct MI300X]".into(),
                "PCB079220-0071".into(),
            ))
        }
        fn vbios(&self, _: u32) -> Result<Vbios, String> {
            Ok(Vbios {
                name: "AMD MI300X_HW_SRIOV_CVS_1VF".into(),
                build_date: "2024/02/28 19:44".into(),
                part_number: "113-M3000100-102".into(),
                version: "022.040.003.043.000001".into(),
            })
        }
        fn firmware(&self, _: u32) -> Result<Firmware, String> {
            Ok(self.firmware.clone())
        }
        fn driver_version(&self, _: u32) -> Result<String, String> {
            Ok("6.10.5".into())
        }
    }

    fn fake(count: u32, failing: Option<u32>) -> FakeAmdSmi {
        FakeAmdSmi {
            count,
            failing,
            firmware: Firmware {
                reported: 3,
                entries: vec![(30, 0x0036_0259), (77, 0x0055_6400), (9, 17)],
            },
        }
    }

    #[test]
    fn every_gpu_is_host_reported_inventory_with_its_firmware() {
        let collection = collect_with(&fake(8, None), 2);
        assert!(collection.problems.is_empty(), "{:?}", collection.problems);
        assert_eq!(collection.gpus.len(), 8);
        let gpu = &collection.gpus[7];
        assert_eq!(gpu.index, 9);
        assert_eq!(
            (gpu.vendor.as_str(), gpu.kind.as_str(), gpu.format.as_str()),
            ("amd", "host-reported", "amdsmi-inventory")
        );
        assert_eq!(gpu.name, "AMD Instinct MI300X");
        assert_eq!(gpu.serial, "PCB079220-0071");
        assert_eq!(gpu.part_number, "113-M3000100-102");
        assert_eq!(gpu.vbios_version, "022.040.003.043.000001");
        assert_eq!(gpu.driver_version, "6.10.5");
        assert!(gpu.report.is_empty() && gpu.evidence.is_empty());
        let firmware: Vec<(&str, &str)> = gpu
            .firmware
            .iter()
            .map(|f| (f.id.as_str(), f.version.as_str()))
            .collect();
        assert_eq!(
            firmware,
            [
                ("PSP_SOSDRV", "00.36.02.59"),
                ("PM", "00.85.100.00"),
                ("RLC", "17")
            ]
        );
    }

    #[test]
    fn a_failing_gpu_stays_listed_with_what_could_be_read() {
        let collection = collect_with(&fake(3, Some(1)), 0);
        assert_eq!(collection.gpus.len(), 3);
        let gpu = &collection.gpus[1];
        assert!(gpu.uuid.is_empty());
        // The ASIC name is missing: the board's product name stands in.
        assert_eq!(gpu.name, "Aqua Vanjaram [Instinct MI300X]");
        assert_eq!(gpu.firmware.len(), 3);
        assert_eq!(
            collection.problems,
            [
                "amdsmi: GPU 1 UUID: AMDSMI_STATUS_NOT_SUPPORTED",
                "amdsmi: GPU 1 ASIC info: AMDSMI_STATUS_DRM_ERROR"
            ]
        );
    }

    #[test]
    fn counts_from_the_library_are_bounded() {
        let mut amdsmi = fake(1000, None);
        amdsmi.firmware = Firmware {
            reported: 255,
            entries: (0..80).map(|i| (i, u64::from(i))).collect(),
        };
        let collection = collect_with(&amdsmi, 0);
        assert_eq!(collection.gpus.len(), MAX_DEVICES as usize);
        assert!(
            collection
                .gpus
                .iter()
                .all(|g| g.firmware.len() == MAX_FIRMWARE)
        );
        assert_eq!(
            collection.problems[0],
            "amdsmi reports 1000 devices; only 64 are read"
        );
        assert_eq!(
            collection.problems[1],
            "amdsmi: GPU 0 firmware: 255 entries reported; only 64 are read"
        );
        // A count below the entries given is honoured.
        amdsmi.count = 1;
        amdsmi.firmware.reported = 2;
        assert_eq!(collect_with(&amdsmi, 0).gpus[0].firmware.len(), 2);
    }

    #[test]
    fn firmware_ids_map_to_the_names_amd_smi_prints() {
        for (id, name) in [
            (1, "SMU"),
            (30, "PSP_SOSDRV"),
            (40, "SEC_POLICY_STAGE2"),
            (73, "TA_RAS"),
            (74, "TA_XGMI"),
            (77, "PM"),
            (79, "PLDM_BUNDLE"),
        ] {
            assert_eq!(firmware_name(id), name);
        }
        assert_eq!(firmware_name(0), "FW_ID_0");
        assert_eq!(firmware_name(80), "FW_ID_80");
        assert_eq!(firmware_name(u32::MAX), format!("FW_ID_{}", u32::MAX));
        assert_eq!(firmware_version_text(73, 0x1b00_0501), "1b.00.05.01");
        assert_eq!(firmware_version_text(18, 0x0111_0000), "01.11.00.00");
        assert_eq!(firmware_version_text(77, 0x0055_1e00), "00.85.30.00");
        assert_eq!(firmware_version_text(1, 0x0055_1e00), "5578240");
        // Wider than 32 bits: every byte is shown.
        assert_eq!(firmware_version_text(30, 0x1_0000_0000), "10.00.00.00.0");
    }

    #[test]
    fn structs_have_amdsmi_h_sizes() {
        assert_eq!(std::mem::size_of::<VbiosInfo>(), 5 * 256 + 36 * 8);
        assert_eq!(std::mem::size_of::<BoardInfo>(), 5 * 256 + 64 * 8);
        assert_eq!(std::mem::size_of::<DriverInfo>(), 3 * 256);
        assert_eq!(std::mem::size_of::<AsicInfo>(), 896);
        assert_eq!(std::mem::size_of::<FwEntry>(), 32);
        assert_eq!(std::mem::size_of::<FwInfo>(), 8 + 80 * 32 + 28 + 4);
        assert_eq!(std::mem::offset_of!(AsicInfo, asic_serial), 532);
        assert_eq!(std::mem::offset_of!(AsicInfo, target_graphics_version), 800);
    }

    #[test]
    fn a_host_without_amdsmi_has_no_amd_gpus_and_says_why() {
        let collection = collect(0, Some(Path::new("/nonexistent/libamd_smi.so")));
        assert!(collection.gpus.is_empty());
        assert_eq!(collection.problems.len(), 1);
        assert!(
            collection.problems[0].starts_with("no AMD GPU: amdsmi at /nonexistent/libamd_smi.so"),
            "{:?}",
            collection.problems
        );
    }
}
