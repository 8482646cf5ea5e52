//! NVIDIA GPUs through NVML (`libnvidia-ml.so.1`), opened at run time so the attester builds
//! and runs on hosts without a GPU or driver. In confidential-computing mode each GPU signs an
//! SPDM measurement report for the verifier's nonce and returns its device certificate chain;
//! otherwise only the inventory (UUID, name, VBIOS, driver, InfoROM, CC mode) is reported, as
//! values the verifier treats as the host's word.
//!
//! Struct layouts follow NVIDIA's `nvml.h` (`nvmlConfComputeGpuAttestationReport_t`,
//! `nvmlConfComputeGpuCertificate_t`, `nvmlConfComputeSystemState_t`). Every size the driver
//! returns is checked against the buffer it describes before a byte is copied.

use std::ffi::{c_char, c_uint, c_void};

use vigil_proto::v1::GpuEvidence;

type NvmlReturn = c_uint;
type Device = *mut c_void;
const NVML_SUCCESS: NvmlReturn = 0;

const ATTESTATION_REPORT_SIZE: usize = 0x2000;
const CEC_ATTESTATION_REPORT_SIZE: usize = 0x1000;
const CERT_CHAIN_SIZE: usize = 0x1000;
const ATTESTATION_CERT_CHAIN_SIZE: usize = 0x1400;
/// Text buffers: NVML's documented maxima (driver 80, UUID/name 96, VBIOS 32, InfoROM 16).
const TEXT_BUFFER: usize = 96;

#[repr(C)]
struct AttestationReport {
    is_cec_attestation_report_present: c_uint,
    attestation_report_size: c_uint,
    cec_attestation_report_size: c_uint,
    nonce: [u8; 32],
    attestation_report: [u8; ATTESTATION_REPORT_SIZE],
    cec_attestation_report: [u8; CEC_ATTESTATION_REPORT_SIZE],
}

#[repr(C)]
struct Certificate {
    cert_chain_size: c_uint,
    attestation_cert_chain_size: c_uint,
    cert_chain: [u8; CERT_CHAIN_SIZE],
    attestation_cert_chain: [u8; ATTESTATION_CERT_CHAIN_SIZE],
}

#[repr(C)]
#[derive(Default)]
struct ConfComputeSystemState {
    environment: c_uint,
    cc_feature: c_uint,
    dev_tools_mode: c_uint,
}

/// Confidential-computing state of the system (NVML reports it system-wide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CcState {
    pub enabled: bool,
    pub devtools: bool,
    /// NVML_CC_SYSTEM_ENVIRONMENT_SIM: CC emulated, no hardware protection behind the report.
    pub simulated: bool,
}

/// What the collector needs from NVML; a fake implements it in tests.
pub trait GpuQuery {
    fn device_count(&self) -> Result<u32, String>;
    fn driver_version(&self) -> Result<String, String>;
    fn cc_state(&self) -> Result<CcState, String>;
    fn uuid(&self, index: u32) -> Result<String, String>;
    fn name(&self, index: u32) -> Result<String, String>;
    fn vbios_version(&self, index: u32) -> Result<String, String>;
    fn inforom_version(&self, index: u32) -> Result<String, String>;
    /// SPDM GET_MEASUREMENTS request || response for `nonce`.
    fn attestation_report(&self, index: u32, nonce: &[u8; 32]) -> Result<Vec<u8>, String>;
    /// The device attestation certificate chain, leaf first (PEM or concatenated DER).
    fn attestation_chain(&self, index: u32) -> Result<Vec<u8>, String>;
}

/// Most GPUs one host is asked about (NVSwitches are not NVML devices).
const MAX_DEVICES: u32 = 64;

/// One collection: evidence for every GPU, and what went wrong on the way (for the log).
#[derive(Debug, Default)]
pub struct Collection {
    pub gpus: Vec<GpuEvidence>,
    pub problems: Vec<String>,
}

/// Collects every GPU: signed evidence in CC mode, inventory otherwise. A GPU whose report
/// cannot be had is still listed (inventory only), so the verifier sees it and its baseline
/// decides; it is never silently left out.
pub fn collect_with(api: &dyn GpuQuery, nonce: &[u8; 32]) -> Collection {
    let mut out = Collection::default();
    let count = match api.device_count() {
        Ok(count) if count > MAX_DEVICES => {
            out.problems.push(format!(
                "NVML reports {count} devices; only {MAX_DEVICES} are read"
            ));
            MAX_DEVICES
        }
        Ok(count) => count,
        Err(error) => {
            out.problems.push(format!("device count: {error}"));
            return out;
        }
    };
    let driver = api.driver_version().unwrap_or_else(|error| {
        out.problems.push(format!("driver version: {error}"));
        String::new()
    });
    let cc = api.cc_state();
    let cc_mode = match &cc {
        Ok(CcState {
            simulated: true, ..
        }) => "simulation",
        Ok(CcState { devtools: true, .. }) => "devtools",
        Ok(CcState { enabled: true, .. }) => "on",
        Ok(_) => "off",
        Err(error) => {
            out.problems.push(format!("CC state: {error}"));
            ""
        }
    };
    for index in 0..count {
        let mut text = |what: &str, value: Result<String, String>| {
            value.unwrap_or_else(|error| {
                out.problems.push(format!("GPU {index} {what}: {error}"));
                String::new()
            })
        };
        let mut gpu = GpuEvidence {
            index,
            vendor: "nvidia".into(),
            uuid: text("UUID", api.uuid(index)),
            name: text("name", api.name(index)),
            driver_version: driver.clone(),
            vbios_version: text("VBIOS version", api.vbios_version(index)),
            inforom_version: text("InfoROM version", api.inforom_version(index)),
            cc_mode: cc_mode.to_owned(),
            ..Default::default()
        };
        // Devtools mode signs reports too, but they prove nothing: send inventory, and the
        // verifier's CC rule refuses it.
        if cc_mode == "on" {
            match (
                api.attestation_report(index, nonce),
                api.attestation_chain(index).and_then(|c| chain_to_pem(&c)),
            ) {
                (Ok(report), Ok(chain)) => {
                    gpu.report = report;
                    gpu.cert_chain_pem = chain;
                }
                (Err(error), _) => out
                    .problems
                    .push(format!("GPU {index} attestation report: {error}")),
                (_, Err(error)) => out
                    .problems
                    .push(format!("GPU {index} certificate chain: {error}")),
            }
        }
        // The device signed only what carries its report; the rest is the host's word.
        let (kind, format) = if gpu.report.is_empty() {
            ("host-reported", "nvml-inventory")
        } else {
            ("device-signed", "nvidia-spdm")
        };
        gpu.kind = kind.into();
        gpu.format = format.into();
        out.gpus.push(gpu);
    }
    out
}

/// Opens NVML and collects; a host without NVML or GPUs has no GPU evidence (said in
/// `problems`), and nothing fails.
pub fn collect(nonce: &[u8; 32]) -> Collection {
    match Nvml::open() {
        Ok(nvml) => collect_with(&nvml, nonce),
        Err(reason) => Collection {
            gpus: Vec::new(),
            problems: vec![format!("no NVIDIA GPU: {reason}")],
        },
    }
}

/// The `size` bytes a driver says it wrote into `buffer`, refusing impossible sizes.
fn bounded(buffer: &[u8], size: c_uint, what: &str) -> Result<Vec<u8>, String> {
    let size = usize::try_from(size).map_err(|_| format!("{what}: size overflow"))?;
    buffer.get(..size).map(<[u8]>::to_vec).ok_or_else(|| {
        format!(
            "{what}: NVML reports {size} bytes in a {}-byte buffer",
            buffer.len()
        )
    })
}

/// NUL-terminated text from a C buffer.
fn c_text(buffer: &[u8]) -> String {
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(buffer.get(..end).unwrap_or_default()).into_owned()
}

/// PEM text as the verifier takes it: kept when NVML returns PEM, built from concatenated DER
/// certificates otherwise.
pub fn chain_to_pem(chain: &[u8]) -> Result<String, String> {
    if chain.starts_with(b"-----BEGIN") {
        // Text may come NUL-padded; DER is taken at exactly the size NVML reports (its last
        // byte may well be zero).
        let end = chain.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        let text = chain.get(..end).unwrap_or_default();
        return String::from_utf8(text.to_vec()).map_err(|_| "PEM chain is not text".into());
    }
    let mut pem = String::new();
    let mut rest = chain;
    while !rest.is_empty() {
        let length = der_length(rest).ok_or("certificate chain: not DER or PEM")?;
        let (certificate, tail) = rest.split_at(length);
        pem.push_str(&crate::tpm2_tools::pem("CERTIFICATE", certificate));
        rest = tail;
    }
    if pem.is_empty() {
        return Err("empty certificate chain".into());
    }
    Ok(pem)
}

/// Total length of the DER SEQUENCE at the start of `data`, if it fits.
fn der_length(data: &[u8]) -> Option<usize> {
    if *data.first()? != 0x30 {
        return None;
    }
    let first = *data.get(1)?;
    let (length, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let mut length = 0usize;
        for i in 0..count {
            length = (length << 8) | usize::from(*data.get(2 + i)?);
        }
        (length, 2 + count)
    };
    let total = header.checked_add(length)?;
    (total <= data.len()).then_some(total)
}

/// The real NVML, opened with `dlopen`.
pub struct Nvml {
    library: libloading::Library,
}

impl Nvml {
    pub fn open() -> Result<Self, String> {
        let mut errors = Vec::new();
        for name in ["libnvidia-ml.so.1", "libnvidia-ml.so"] {
            // SAFETY: loading NVIDIA's management library runs its initialisers, which is
            // what every NVML user does; no symbol is used before nvmlInit_v2 succeeds.
            match unsafe { libloading::Library::new(name) } {
                Ok(library) => {
                    let nvml = Nvml { library };
                    // SAFETY: nvmlInit_v2 takes no arguments and returns nvmlReturn_t.
                    let rc = unsafe { nvml.call0(b"nvmlInit_v2\0")? };
                    if rc != NVML_SUCCESS {
                        // Not initialised: do not call nvmlShutdown on drop.
                        let message = nvml.error_string(rc);
                        std::mem::forget(nvml);
                        return Err(format!("nvmlInit_v2: {message}"));
                    }
                    return Ok(nvml);
                }
                Err(error) => errors.push(format!("{name}: {error}")),
            }
        }
        Err(format!("NVML is not installed ({})", errors.join("; ")))
    }

    /// SAFETY: `name` must be an NVML function taking no arguments.
    unsafe fn call0(&self, name: &[u8]) -> Result<NvmlReturn, String> {
        let function: libloading::Symbol<'_, unsafe extern "C" fn() -> NvmlReturn> =
            unsafe { self.library.get(name) }.map_err(|e| e.to_string())?;
        Ok(unsafe { function() })
    }

    fn error_string(&self, rc: NvmlReturn) -> String {
        // SAFETY: nvmlErrorString returns a static NUL-terminated string (or NULL).
        let text = unsafe {
            self.library
                .get::<unsafe extern "C" fn(NvmlReturn) -> *const c_char>(b"nvmlErrorString\0")
                .ok()
                .map(|f| f(rc))
                .filter(|p| !p.is_null())
                .map(|p| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        format!(
            "{} (code {rc})",
            text.unwrap_or_else(|| "unknown error".into())
        )
    }

    fn check(&self, function: &str, rc: NvmlReturn) -> Result<(), String> {
        if rc == NVML_SUCCESS {
            Ok(())
        } else {
            Err(format!("{function}: {}", self.error_string(rc)))
        }
    }

    fn device(&self, index: u32) -> Result<Device, String> {
        let mut device: Device = std::ptr::null_mut();
        // SAFETY: signature from nvml.h; `device` outlives the call.
        let rc = unsafe {
            let f: libloading::Symbol<'_, unsafe extern "C" fn(c_uint, *mut Device) -> NvmlReturn> =
                self.library
                    .get(b"nvmlDeviceGetHandleByIndex_v2\0")
                    .map_err(|e| e.to_string())?;
            f(index, &mut device)
        };
        self.check("nvmlDeviceGetHandleByIndex_v2", rc)?;
        Ok(device)
    }

    /// A `(device, char*, length)` text getter.
    fn device_text(&self, index: u32, function: &str) -> Result<String, String> {
        let device = self.device(index)?;
        let mut buffer = [0u8; TEXT_BUFFER];
        let symbol = format!("{function}\0");
        // SAFETY: signature from nvml.h; the buffer and its length agree.
        let rc = unsafe {
            let f: libloading::Symbol<
                '_,
                unsafe extern "C" fn(Device, *mut c_char, c_uint) -> NvmlReturn,
            > = self
                .library
                .get(symbol.as_bytes())
                .map_err(|e| e.to_string())?;
            f(device, buffer.as_mut_ptr().cast(), TEXT_BUFFER as c_uint)
        };
        self.check(function, rc)?;
        Ok(c_text(&buffer))
    }
}

impl GpuQuery for Nvml {
    fn device_count(&self) -> Result<u32, String> {
        let mut count: c_uint = 0;
        // SAFETY: signature from nvml.h.
        let rc = unsafe {
            let f: libloading::Symbol<'_, unsafe extern "C" fn(*mut c_uint) -> NvmlReturn> = self
                .library
                .get(b"nvmlDeviceGetCount_v2\0")
                .map_err(|e| e.to_string())?;
            f(&mut count)
        };
        self.check("nvmlDeviceGetCount_v2", rc)?;
        Ok(count)
    }

    fn driver_version(&self) -> Result<String, String> {
        let mut buffer = [0u8; TEXT_BUFFER];
        // SAFETY: signature from nvml.h; the buffer and its length agree.
        let rc = unsafe {
            let f: libloading::Symbol<'_, unsafe extern "C" fn(*mut c_char, c_uint) -> NvmlReturn> =
                self.library
                    .get(b"nvmlSystemGetDriverVersion\0")
                    .map_err(|e| e.to_string())?;
            f(buffer.as_mut_ptr().cast(), TEXT_BUFFER as c_uint)
        };
        self.check("nvmlSystemGetDriverVersion", rc)?;
        Ok(c_text(&buffer))
    }

    fn cc_state(&self) -> Result<CcState, String> {
        let mut state = ConfComputeSystemState::default();
        // SAFETY: signature from nvml.h; `state` has the documented layout.
        let rc = unsafe {
            let f: libloading::Symbol<
                '_,
                unsafe extern "C" fn(*mut ConfComputeSystemState) -> NvmlReturn,
            > = self
                .library
                .get(b"nvmlSystemGetConfComputeState\0")
                .map_err(|e| format!("no CC support in this driver: {e}"))?;
            f(&mut state)
        };
        self.check("nvmlSystemGetConfComputeState", rc)?;
        const ENVIRONMENT_SIMULATION: c_uint = 1;
        Ok(CcState {
            enabled: state.cc_feature != 0,
            devtools: state.dev_tools_mode != 0,
            simulated: state.environment == ENVIRONMENT_SIMULATION,
        })
    }

    fn uuid(&self, index: u32) -> Result<String, String> {
        self.device_text(index, "nvmlDeviceGetUUID")
    }

    fn name(&self, index: u32) -> Result<String, String> {
        self.device_text(index, "nvmlDeviceGetName")
    }

    fn vbios_version(&self, index: u32) -> Result<String, String> {
        self.device_text(index, "nvmlDeviceGetVbiosVersion")
    }

    fn inforom_version(&self, index: u32) -> Result<String, String> {
        self.device_text(index, "nvmlDeviceGetInforomImageVersion")
    }

    fn attestation_report(&self, index: u32, nonce: &[u8; 32]) -> Result<Vec<u8>, String> {
        let device = self.device(index)?;
        // 12 KiB: on the heap, zeroed, nonce in place before the call.
        let mut report: Box<AttestationReport> = Box::new(AttestationReport {
            is_cec_attestation_report_present: 0,
            attestation_report_size: 0,
            cec_attestation_report_size: 0,
            nonce: *nonce,
            attestation_report: [0; ATTESTATION_REPORT_SIZE],
            cec_attestation_report: [0; CEC_ATTESTATION_REPORT_SIZE],
        });
        // SAFETY: signature from nvml.h; the struct has the documented layout.
        let rc = unsafe {
            let f: libloading::Symbol<
                '_,
                unsafe extern "C" fn(Device, *mut AttestationReport) -> NvmlReturn,
            > = self
                .library
                .get(b"nvmlDeviceGetConfComputeGpuAttestationReport\0")
                .map_err(|e| e.to_string())?;
            f(device, &mut *report)
        };
        self.check("nvmlDeviceGetConfComputeGpuAttestationReport", rc)?;
        let _ = (
            report.is_cec_attestation_report_present,
            report.cec_attestation_report_size,
        );
        bounded(
            &report.attestation_report,
            report.attestation_report_size,
            "attestation report",
        )
    }

    fn attestation_chain(&self, index: u32) -> Result<Vec<u8>, String> {
        let device = self.device(index)?;
        let mut certificate: Box<Certificate> = Box::new(Certificate {
            cert_chain_size: 0,
            attestation_cert_chain_size: 0,
            cert_chain: [0; CERT_CHAIN_SIZE],
            attestation_cert_chain: [0; ATTESTATION_CERT_CHAIN_SIZE],
        });
        // SAFETY: signature from nvml.h; the struct has the documented layout.
        let rc = unsafe {
            let f: libloading::Symbol<
                '_,
                unsafe extern "C" fn(Device, *mut Certificate) -> NvmlReturn,
            > = self
                .library
                .get(b"nvmlDeviceGetConfComputeGpuCertificate\0")
                .map_err(|e| e.to_string())?;
            f(device, &mut *certificate)
        };
        self.check("nvmlDeviceGetConfComputeGpuCertificate", rc)?;
        let _ = (certificate.cert_chain_size, certificate.cert_chain.len());
        // The attestation chain (leaf = the GPU's per-boot attestation key) is what signs
        // reports; `certChain` is the device identity chain without it.
        bounded(
            &certificate.attestation_cert_chain,
            certificate.attestation_cert_chain_size,
            "attestation certificate chain",
        )
    }
}

impl Drop for Nvml {
    fn drop(&mut self) {
        // SAFETY: NVML was initialised in `open`; nvmlShutdown takes no arguments.
        let _ = unsafe { self.call0(b"nvmlShutdown\0") };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host with two GPUs whose answers each test sets.
    struct FakeNvml {
        cc: Result<CcState, String>,
        failing_report: Option<u32>,
        seen_nonce: std::cell::RefCell<Vec<[u8; 32]>>,
    }

    impl GpuQuery for FakeNvml {
        fn device_count(&self) -> Result<u32, String> {
            Ok(2)
        }
        fn driver_version(&self) -> Result<String, String> {
            Ok("550.90.07".into())
        }
        fn cc_state(&self) -> Result<CcState, String> {
            self.cc.clone()
        }
        fn uuid(&self, index: u32) -> Result<String, String> {
            Ok(format!("GPU-{index:08}"))
        }
        fn name(&self, _: u32) -> Result<String, String> {
            Ok("NVIDIA H100 80GB HBM3".into())
        }
        fn vbios_version(&self, _: u32) -> Result<String, String> {
            Ok("96.00.9F.00.01".into())
        }
        fn inforom_version(&self, index: u32) -> Result<String, String> {
            if index == 1 {
                Err("NVML_ERROR_NOT_SUPPORTED".into())
            } else {
                Ok("G520.0200.00.05".into())
            }
        }
        fn attestation_report(&self, index: u32, nonce: &[u8; 32]) -> Result<Vec<u8>, String> {
            self.seen_nonce.borrow_mut().push(*nonce);
            if self.failing_report == Some(index) {
                return Err("NVML_ERROR_TIMEOUT".into());
            }
            Ok(vec![0x11, index as u8])
        }
        fn attestation_chain(&self, _: u32) -> Result<Vec<u8>, String> {
            // Two tiny DER SEQUENCEs.
            Ok(vec![0x30, 0x01, 0xAA, 0x30, 0x02, 0xBB, 0xCC])
        }
    }

    fn fake(cc: Result<CcState, String>, failing_report: Option<u32>) -> FakeNvml {
        FakeNvml {
            cc,
            failing_report,
            seen_nonce: Default::default(),
        }
    }

    #[test]
    fn cc_on_collects_signed_reports_for_the_verifiers_nonce() {
        let nvml = fake(
            Ok(CcState {
                enabled: true,
                devtools: false,
                simulated: false,
            }),
            None,
        );
        let collection = collect_with(&nvml, &[9; 32]);
        assert_eq!(collection.gpus.len(), 2);
        assert_eq!(*nvml.seen_nonce.borrow(), vec![[9u8; 32]; 2]);
        let gpu = &collection.gpus[1];
        assert_eq!((gpu.index, gpu.report.as_slice()), (1, &[0x11, 1][..]));
        assert_eq!(gpu.cert_chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert_eq!(gpu.cc_mode, "on");
        assert_eq!(
            (gpu.kind.as_str(), gpu.format.as_str()),
            ("device-signed", "nvidia-spdm")
        );
        assert_eq!(gpu.driver_version, "550.90.07");
        // A failed InfoROM read is a problem noted, not a missing GPU.
        assert_eq!(
            collection.problems,
            ["GPU 1 InfoROM version: NVML_ERROR_NOT_SUPPORTED"]
        );
    }

    #[test]
    fn cc_off_devtools_and_simulation_send_inventory_only() {
        for (state, mode) in [
            (
                CcState {
                    enabled: false,
                    devtools: false,
                    simulated: false,
                },
                "off",
            ),
            (
                CcState {
                    enabled: true,
                    devtools: true,
                    simulated: false,
                },
                "devtools",
            ),
            (
                CcState {
                    enabled: true,
                    devtools: false,
                    simulated: true,
                },
                "simulation",
            ),
        ] {
            let nvml = fake(Ok(state), None);
            let collection = collect_with(&nvml, &[1; 32]);
            assert!(
                nvml.seen_nonce.borrow().is_empty(),
                "{mode}: no report requested"
            );
            assert!(
                collection
                    .gpus
                    .iter()
                    .all(|g| g.report.is_empty() && g.cc_mode == mode)
            );
            assert_eq!(collection.gpus[0].vbios_version, "96.00.9F.00.01");
        }
    }

    #[test]
    fn a_gpu_without_its_report_is_still_listed_with_the_reason() {
        let nvml = fake(
            Ok(CcState {
                enabled: true,
                devtools: false,
                simulated: false,
            }),
            Some(0),
        );
        let collection = collect_with(&nvml, &[1; 32]);
        assert_eq!(collection.gpus.len(), 2);
        assert!(collection.gpus[0].report.is_empty());
        assert!(!collection.gpus[1].report.is_empty());
        assert_eq!(
            (
                collection.gpus[0].kind.as_str(),
                collection.gpus[0].format.as_str()
            ),
            ("host-reported", "nvml-inventory")
        );
        assert_eq!(collection.gpus[1].kind, "device-signed");
        assert!(
            collection
                .problems
                .iter()
                .any(|p| p == "GPU 0 attestation report: NVML_ERROR_TIMEOUT")
        );
        // Unknown CC state: inventory only, and said.
        let nvml = fake(Err("no CC support in this driver".into()), None);
        let collection = collect_with(&nvml, &[1; 32]);
        assert!(
            collection
                .gpus
                .iter()
                .all(|g| g.report.is_empty() && g.cc_mode.is_empty())
        );
        assert!(collection.problems[0].starts_with("CC state"));
    }

    #[test]
    fn structs_have_nvml_h_sizes() {
        assert_eq!(std::mem::size_of::<ConfComputeSystemState>(), 12);
        assert_eq!(
            std::mem::size_of::<AttestationReport>(),
            12 + 32 + 0x2000 + 0x1000
        );
        assert_eq!(std::mem::size_of::<Certificate>(), 8 + 0x1000 + 0x1400);
    }

    #[test]
    fn sizes_from_the_driver_are_bounded() {
        let buffer = [7u8; 16];
        assert_eq!(bounded(&buffer, 3, "r").unwrap(), vec![7, 7, 7]);
        let error = bounded(&buffer, 17, "attestation report").unwrap_err();
        assert!(error.contains("17 bytes in a 16-byte buffer"), "{error}");
        assert!(bounded(&buffer, c_uint::MAX, "r").is_err());
    }

    #[test]
    fn chains_become_pem_and_garbage_is_refused() {
        let pem = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
        let mut padded = pem.as_bytes().to_vec();
        padded.extend([0u8; 10]);
        assert_eq!(chain_to_pem(&padded).unwrap(), pem);
        let der = chain_to_pem(&[0x30, 0x03, 1, 2, 3]).unwrap();
        assert!(der.contains("MAMBAgM="), "{der}");
        // DER whose last byte is zero is kept whole.
        let der = chain_to_pem(&[0x30, 0x02, 7, 0]).unwrap();
        assert!(der.contains("MAIHAA=="), "{der}");
        assert!(chain_to_pem(&[0x30, 0x05, 1]).is_err(), "truncated DER");
        assert!(chain_to_pem(&[0x04, 0x00]).is_err(), "not a SEQUENCE");
        assert!(chain_to_pem(&[]).is_err());
        assert!(
            chain_to_pem(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err(),
            "length of length"
        );
    }

    #[test]
    fn a_host_without_nvml_has_no_gpu_evidence_and_says_why() {
        // This machine has no NVIDIA driver; a GPU machine skips this test.
        if Nvml::open().is_ok() {
            eprintln!("NVML present: skipping the no-GPU case");
            return;
        }
        let collection = collect(&[0; 32]);
        assert!(collection.gpus.is_empty());
        assert!(
            collection.problems[0]
                .starts_with("no NVIDIA GPU: NVML is not installed (libnvidia-ml.so.1"),
            "{:?}",
            collection.problems
        );
    }
}
