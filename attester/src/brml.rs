//! Biren GPUs through BRML (`libbiren-ml.so.1`, the library go-brml opens), loaded at run
//! time. BRML has no device attestation: every GPU is sent as a host-reported inventory
//! (kind "host-reported", format "brml-inventory"): name and serial (`brmlDeviceGetGpuInfo`),
//! UUID, board part number, driver version, and the version of each firmware type
//! `brmlDeviceGetFirmwareVersion` knows (CP, SDMA, ENCODE, DECODE, HBM, FLASH, MPU, PMU; the
//! FLASH version also stands as the VBIOS version).
//!
//! Signatures and `brmlGPUInfo_t` follow `brml.h` as published with BirenTechnology/go-brml.

use std::ffi::{c_char, c_int, c_uint, c_void};
use std::path::Path;

use vigil_proto::v1::{FirmwareVersion, GpuEvidence};

use crate::gpu::{MAX_TEXT, bound_devices, c_pointer_string, c_string, symbol};
use crate::nvml::Collection;

type Return = c_uint;
type Device = *mut c_void;
const BRML_SUCCESS: Return = 0;

/// `brmlGPUInfo_t`.
#[repr(C)]
struct GpuInfo {
    name: [u8; 96],
    id: [u8; 96],
    serial: [u8; 96],
    board_id: [u8; 96],
}

/// `brmlGPUFirmwareType_t` values and the names this attester gives them.
pub const FIRMWARE_TYPES: [(c_uint, &str); 8] = [
    (1, "CP"),
    (2, "SDMA"),
    (3, "ENCODE"),
    (4, "DECODE"),
    (5, "HBM"),
    (6, "FLASH"),
    (7, "MPU"),
    (8, "PMU"),
];

/// What the collector needs from BRML; a fake implements it in tests.
pub trait BrmlQuery {
    fn device_count(&self) -> Result<u32, String>;
    fn driver_version(&self) -> Result<String, String>;
    fn uuid(&self, index: u32) -> Result<String, String>;
    /// (product name, serial number)
    fn info(&self, index: u32) -> Result<(String, String), String>;
    fn part_number(&self, index: u32) -> Result<String, String>;
    fn firmware_version(&self, index: u32, firmware_type: c_uint) -> Result<String, String>;
}

/// Collects every GPU BRML reports (at most `MAX_DEVICES`), indexed from `first_index`. A GPU
/// some of whose fields cannot be read is still listed with the rest.
pub fn collect_with(api: &dyn BrmlQuery, first_index: u32) -> Collection {
    let mut out = Collection::default();
    let count = match api.device_count() {
        Ok(count) => bound_devices(count, "BRML", &mut out.problems),
        Err(error) => {
            out.problems.push(format!("BRML: device count: {error}"));
            return out;
        }
    };
    let driver = api.driver_version().unwrap_or_else(|error| {
        out.problems.push(format!("BRML: driver version: {error}"));
        String::new()
    });
    for index in 0..count {
        let mut note = |what: &str, error: String| {
            out.problems
                .push(format!("BRML: GPU {index} {what}: {error}"));
        };
        let mut gpu = GpuEvidence {
            index: first_index.saturating_add(index),
            vendor: "biren".into(),
            kind: "host-reported".into(),
            format: "brml-inventory".into(),
            driver_version: driver.clone(),
            ..Default::default()
        };
        match api.uuid(index) {
            Ok(uuid) => gpu.uuid = uuid,
            Err(error) => note("UUID", error),
        }
        match api.info(index) {
            Ok((name, serial)) => (gpu.name, gpu.serial) = (name, serial),
            Err(error) => note("GPU info", error),
        }
        match api.part_number(index) {
            Ok(part) => gpu.part_number = part,
            Err(error) => note("part number", error),
        }
        for (firmware_type, name) in FIRMWARE_TYPES {
            match api.firmware_version(index, firmware_type) {
                Ok(version) => {
                    if name == "FLASH" {
                        gpu.vbios_version.clone_from(&version);
                    }
                    gpu.firmware.push(FirmwareVersion {
                        id: name.into(),
                        version,
                    });
                }
                Err(error) => note(&format!("{name} firmware"), error),
            }
        }
        out.gpus.push(gpu);
    }
    out
}

/// Opens BRML (the given path, or the system's) and collects; a host without it has no Biren
/// GPUs (said in `problems`).
pub fn collect(first_index: u32, library: Option<&Path>) -> Collection {
    match Brml::open(library) {
        Ok(brml) => collect_with(&brml, first_index),
        Err(reason) => Collection {
            gpus: Vec::new(),
            problems: vec![format!("no Biren GPU: {reason}")],
        },
    }
}

/// The real BRML, opened with `dlopen`.
pub struct Brml {
    library: libloading::Library,
}

impl Brml {
    pub fn open(path: Option<&Path>) -> Result<Self, String> {
        let library =
            crate::gpu::open_library(path, &["libbiren-ml.so.1", "libbiren-ml.so"], "BRML")?;
        // SAFETY: `brmlReturn_t brmlInit(void)`.
        let rc = unsafe {
            let init: unsafe extern "C" fn() -> Return = symbol(&library, "brmlInit")?;
            init()
        };
        let brml = Brml { library };
        if rc != BRML_SUCCESS {
            let message = brml.error_string(rc);
            // Not initialised: no brmlShutdown on drop.
            std::mem::forget(brml);
            return Err(format!("brmlInit: {message}"));
        }
        Ok(brml)
    }

    fn error_string(&self, rc: Return) -> String {
        // SAFETY: `const char *brmlErrorString(brmlReturn_t)` returns a static string, read a
        // bounded distance.
        let text = unsafe {
            symbol::<unsafe extern "C" fn(Return) -> *const c_char>(
                &self.library,
                "brmlErrorString",
            )
            .ok()
            .and_then(|f| c_pointer_string(f(rc)))
        };
        format!(
            "{} (code {rc})",
            text.unwrap_or_else(|| "unknown error".into())
        )
    }

    fn check(&self, function: &str, rc: Return) -> Result<(), String> {
        if rc == BRML_SUCCESS {
            Ok(())
        } else {
            Err(format!("{function}: {}", self.error_string(rc)))
        }
    }

    fn device(&self, index: u32) -> Result<Device, String> {
        let mut device: Device = std::ptr::null_mut();
        // SAFETY: `brmlDeviceGetHandleByIndex(unsigned int, brmlDevice_t *)`.
        let rc = unsafe {
            let f: unsafe extern "C" fn(c_uint, *mut Device) -> Return =
                symbol(&self.library, "brmlDeviceGetHandleByIndex")?;
            f(index, &mut device)
        };
        self.check("brmlDeviceGetHandleByIndex", rc)?;
        Ok(device)
    }

    /// A `(device, char *, unsigned int length)` text getter.
    fn device_text(&self, index: u32, function: &str) -> Result<String, String> {
        let device = self.device(index)?;
        let mut buffer = [0u8; MAX_TEXT];
        // SAFETY: signature from brml.h; the buffer and its length agree.
        let rc = unsafe {
            let f: unsafe extern "C" fn(Device, *mut c_char, c_uint) -> Return =
                symbol(&self.library, function)?;
            f(device, buffer.as_mut_ptr().cast(), MAX_TEXT as c_uint)
        };
        self.check(function, rc)?;
        c_string(&buffer, function)
    }
}

impl BrmlQuery for Brml {
    fn device_count(&self) -> Result<u32, String> {
        let mut count: c_uint = 0;
        // SAFETY: `brmlDeviceGetCount(unsigned int *)`.
        let rc = unsafe {
            let f: unsafe extern "C" fn(*mut c_uint) -> Return =
                symbol(&self.library, "brmlDeviceGetCount")?;
            f(&mut count)
        };
        self.check("brmlDeviceGetCount", rc)?;
        Ok(count)
    }

    fn driver_version(&self) -> Result<String, String> {
        let mut buffer = [0u8; MAX_TEXT];
        // SAFETY: `brmlSystemGetDriverVersion(char *, unsigned int)`.
        let rc = unsafe {
            let f: unsafe extern "C" fn(*mut c_char, c_uint) -> Return =
                symbol(&self.library, "brmlSystemGetDriverVersion")?;
            f(buffer.as_mut_ptr().cast(), MAX_TEXT as c_uint)
        };
        self.check("brmlSystemGetDriverVersion", rc)?;
        c_string(&buffer, "driver version")
    }

    fn uuid(&self, index: u32) -> Result<String, String> {
        self.device_text(index, "brmlDeviceGetUUID")
    }

    fn info(&self, index: u32) -> Result<(String, String), String> {
        let device = self.device(index)?;
        // SAFETY: plain old data.
        let mut info: Box<GpuInfo> = unsafe { Box::new(std::mem::zeroed()) };
        // SAFETY: `brmlDeviceGetGpuInfo(brmlDevice_t, brmlGPUInfo_t *)`.
        let rc = unsafe {
            let f: unsafe extern "C" fn(Device, *mut GpuInfo) -> Return =
                symbol(&self.library, "brmlDeviceGetGpuInfo")?;
            f(device, &mut *info)
        };
        self.check("brmlDeviceGetGpuInfo", rc)?;
        Ok((
            c_string(&info.name, "product name")?,
            c_string(&info.serial, "serial number")?,
        ))
    }

    fn part_number(&self, index: u32) -> Result<String, String> {
        self.device_text(index, "brmlDeviceGetBoardPartNumber")
    }

    fn firmware_version(&self, index: u32, firmware_type: c_uint) -> Result<String, String> {
        let device = self.device(index)?;
        let mut buffer = [0u8; MAX_TEXT];
        // SAFETY: `brmlDeviceGetFirmwareVersion(brmlDevice_t, brmlGPUFirmwareType_t, char *,
        // int length)`; the buffer and its length agree.
        let rc = unsafe {
            let f: unsafe extern "C" fn(Device, c_uint, *mut c_char, c_int) -> Return =
                symbol(&self.library, "brmlDeviceGetFirmwareVersion")?;
            f(
                device,
                firmware_type,
                buffer.as_mut_ptr().cast(),
                MAX_TEXT as c_int,
            )
        };
        self.check("brmlDeviceGetFirmwareVersion", rc)?;
        c_string(&buffer, "firmware version")
    }
}

impl Drop for Brml {
    fn drop(&mut self) {
        // SAFETY: BRML was initialised in `open`; `brmlShutdown(void)`.
        unsafe {
            if let Ok(f) = symbol::<unsafe extern "C" fn() -> Return>(&self.library, "brmlShutdown")
            {
                f();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeBrml {
        count: u32,
        failing: Option<u32>,
    }

    impl BrmlQuery for FakeBrml {
        fn device_count(&self) -> Result<u32, String> {
            Ok(self.count)
        }
        fn driver_version(&self) -> Result<String, String> {
            Ok("1.5.0".into())
        }
        fn uuid(&self, index: u32) -> Result<String, String> {
            Ok(format!("GPU-2b8f9c1e-0000-0000-0000-{index:012}"))
        }
        fn info(&self, index: u32) -> Result<(String, String), String> {
            if self.failing == Some(index) {
                return Err("brmlDeviceGetGpuInfo: Unknown Error (code 255)".into());
            }
            Ok(("BR104P".into(), "SN2310BR1040001".into()))
        }
        fn part_number(&self, _: u32) -> Result<String, String> {
            Ok("BR104P-PCIE-64G".into())
        }
        fn firmware_version(&self, _: u32, firmware_type: c_uint) -> Result<String, String> {
            if firmware_type == 3 {
                return Err("brmlDeviceGetFirmwareVersion: Not Supported (code 3)".into());
            }
            Ok(format!("0.{firmware_type}.12"))
        }
    }

    #[test]
    fn every_gpu_is_host_reported_inventory_with_its_firmware() {
        let collection = collect_with(
            &FakeBrml {
                count: 2,
                failing: None,
            },
            10,
        );
        assert_eq!(collection.gpus.len(), 2);
        let gpu = &collection.gpus[1];
        assert_eq!(gpu.index, 11);
        assert_eq!(
            (gpu.vendor.as_str(), gpu.kind.as_str(), gpu.format.as_str()),
            ("biren", "host-reported", "brml-inventory")
        );
        assert_eq!(gpu.name, "BR104P");
        assert_eq!(gpu.serial, "SN2310BR1040001");
        assert_eq!(gpu.part_number, "BR104P-PCIE-64G");
        assert_eq!(gpu.driver_version, "1.5.0");
        assert_eq!(gpu.vbios_version, "0.6.12");
        let ids: Vec<&str> = gpu.firmware.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["CP", "SDMA", "DECODE", "HBM", "FLASH", "MPU", "PMU"]);
        assert_eq!(
            collection.problems,
            [
                "BRML: GPU 0 ENCODE firmware: brmlDeviceGetFirmwareVersion: Not Supported (code 3)",
                "BRML: GPU 1 ENCODE firmware: brmlDeviceGetFirmwareVersion: Not Supported (code 3)"
            ]
        );
    }

    #[test]
    fn a_failing_gpu_stays_listed_and_counts_are_bounded() {
        let collection = collect_with(
            &FakeBrml {
                count: 3,
                failing: Some(1),
            },
            0,
        );
        assert_eq!(collection.gpus.len(), 3);
        assert!(collection.gpus[1].name.is_empty());
        assert_eq!(collection.gpus[1].firmware.len(), 7);
        assert!(collection.problems.contains(
            &"BRML: GPU 1 GPU info: brmlDeviceGetGpuInfo: Unknown Error (code 255)".to_owned()
        ));
        let collection = collect_with(
            &FakeBrml {
                count: u32::MAX,
                failing: None,
            },
            0,
        );
        assert_eq!(collection.gpus.len(), 64);
        assert_eq!(
            collection.problems[0],
            format!("BRML reports {} devices; only 64 are read", u32::MAX)
        );
    }

    #[test]
    fn structs_have_brml_h_sizes() {
        assert_eq!(std::mem::size_of::<GpuInfo>(), 4 * 96);
    }

    #[test]
    fn a_host_without_brml_has_no_biren_gpus_and_says_why() {
        let collection = collect(0, Some(Path::new("/nonexistent/libbiren-ml.so.1")));
        assert!(collection.gpus.is_empty());
        assert!(collection.problems[0].starts_with("no Biren GPU: BRML at /nonexistent"));
    }
}
