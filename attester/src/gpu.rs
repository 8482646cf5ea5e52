//! GPU evidence for a challenge. Every GPU's evidence answers the verifier's own nonce, and
//! the TPM quote then commits to exactly this list (`vigil_proto::binding`).
//!
//! Sources, each vendor library opened at run time (a host without it has no devices of that
//! vendor, said once, and nothing fails):
//! - NVIDIA through NVML (`nvml`): signed SPDM report and device chain in
//!   confidential-computing mode, unsigned inventory otherwise;
//! - AMD Instinct through amdsmi (`amdsmi`): host-reported inventory and firmware list;
//! - Huawei Ascend through DCMI (`dcmi`): inventory, and on parts that attest, the device's
//!   signed quote and logs for a challenge derived from the verifier's nonce;
//! - Biren through BRML (`brml`): host-reported inventory and firmware list;
//! - or recorded evidence replayed from files (`--gpu-replay`, for tests and demos: the
//!   verifier checks it like any report, so a replayed report fails its nonce check).
//!
//! Devices are indexed 0.. across vendors in a fixed order: NVIDIA, AMD, Huawei, Biren, each
//! vendor's devices in its library's order.

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::path::{Path, PathBuf};

use vigil_proto::v1::GpuEvidence;

use crate::nvml::Collection;

/// Largest recorded report or chain file read (NVML's buffers are 8 KiB and 5 KiB).
const MAX_REPLAY_FILE: u64 = 1024 * 1024;

/// Most devices read from one vendor's library.
pub const MAX_DEVICES: u32 = 64;
/// Most firmware entries read for one device.
pub const MAX_FIRMWARE: usize = 64;
/// Longest text read from a vendor library, terminator included.
pub const MAX_TEXT: usize = 256;

/// A GPU vendor whose library the attester can open. The order is the index order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Vendor {
    Nvidia,
    Amd,
    Huawei,
    Biren,
}

impl Vendor {
    pub const ALL: [Vendor; 4] = [Vendor::Nvidia, Vendor::Amd, Vendor::Huawei, Vendor::Biren];

    pub fn name(self) -> &'static str {
        match self {
            Vendor::Nvidia => "nvidia",
            Vendor::Amd => "amd",
            Vendor::Huawei => "huawei",
            Vendor::Biren => "biren",
        }
    }

    fn parse(text: &str) -> Option<Vendor> {
        Vendor::ALL.into_iter().find(|v| v.name() == text)
    }
}

/// `--gpus`: `all`, `none`, or a comma list of vendors. Empty: no GPU evidence.
pub fn parse_gpus(spec: &str) -> Result<Vec<Vendor>, String> {
    let mut vendors = Vec::new();
    let words: Vec<&str> = spec.split(',').map(str::trim).collect();
    for word in &words {
        match *word {
            "all" => vendors.extend(Vendor::ALL),
            "none" if words.len() == 1 => {}
            "none" => return Err(format!("--gpus {spec:?}: `none` cannot be combined")),
            name => vendors.push(Vendor::parse(name).ok_or_else(|| {
                format!(
                    "--gpus {spec:?}: unknown vendor {name:?} (expected all, none, nvidia, amd, huawei, biren)"
                )
            })?),
        }
    }
    vendors.sort_unstable();
    vendors.dedup();
    Ok(vendors)
}

/// `--gpu-lib VENDOR=PATH`.
pub fn parse_gpu_lib(spec: &str) -> Result<(Vendor, PathBuf), String> {
    let (vendor, path) = spec
        .split_once('=')
        .ok_or_else(|| format!("--gpu-lib {spec:?}: expected VENDOR=PATH"))?;
    let vendor = match Vendor::parse(vendor.trim()) {
        Some(Vendor::Nvidia) => {
            return Err(format!(
                "--gpu-lib {spec:?}: NVML is always opened from the system (libnvidia-ml.so.1)"
            ));
        }
        Some(vendor) => vendor,
        None => {
            return Err(format!(
                "--gpu-lib {spec:?}: unknown vendor (expected amd, huawei or biren)"
            ));
        }
    };
    if path.is_empty() {
        return Err(format!("--gpu-lib {spec:?}: empty path"));
    }
    Ok((vendor, PathBuf::from(path)))
}

#[derive(Debug, Clone)]
pub enum GpuSource {
    /// No GPU evidence (`--gpus none`).
    None,
    /// These vendors' devices, through their libraries (default names, or the given paths).
    Vendors {
        vendors: Vec<Vendor>,
        libraries: BTreeMap<Vendor, PathBuf>,
    },
    /// Recorded (report, PEM chain) files, one GPU each, in order.
    Replay(Vec<(PathBuf, PathBuf)>),
}

impl GpuSource {
    /// The source for `--gpus SPEC` and `--gpu-lib VENDOR=PATH` options.
    pub fn from_options(gpus: &str, libraries: &[String]) -> Result<GpuSource, String> {
        let vendors = parse_gpus(gpus)?;
        let mut paths = BTreeMap::new();
        for spec in libraries {
            let (vendor, path) = parse_gpu_lib(spec)?;
            if !vendors.contains(&vendor) {
                return Err(format!(
                    "--gpu-lib {spec:?}: {} is not collected (--gpus {gpus})",
                    vendor.name()
                ));
            }
            if paths.insert(vendor, path).is_some() {
                return Err(format!(
                    "--gpu-lib: {} is given more than once",
                    vendor.name()
                ));
            }
        }
        if vendors.is_empty() {
            return Ok(GpuSource::None);
        }
        Ok(GpuSource::Vendors {
            vendors,
            libraries: paths,
        })
    }

    /// Evidence for `nonce`, one entry per GPU; what went wrong is logged once while it stays
    /// the same.
    pub fn collect(&self, nonce: &[u8; 32]) -> Result<Vec<GpuEvidence>, String> {
        match self {
            GpuSource::Replay(files) => replay(files),
            _ => {
                // Said once while it stays the same (a host without GPUs would say it every
                // challenge).
                static LAST_PROBLEMS: std::sync::Mutex<Vec<String>> =
                    std::sync::Mutex::new(Vec::new());
                let collection = self.collect_all(nonce);
                if let Ok(mut last) = LAST_PROBLEMS.lock()
                    && *last != collection.problems
                {
                    for problem in &collection.problems {
                        eprintln!("vigil-attester: GPU: {problem}");
                    }
                    last.clone_from(&collection.problems);
                }
                Ok(collection.gpus)
            }
        }
    }

    /// Every device of every selected vendor, and the notes (missing libraries, fields that
    /// could not be read). Replayed evidence has no notes.
    pub fn collect_all(&self, nonce: &[u8; 32]) -> Collection {
        let mut out = Collection::default();
        match self {
            GpuSource::None => {}
            GpuSource::Replay(files) => match replay(files) {
                Ok(gpus) => out.gpus = gpus,
                Err(error) => out.problems.push(error),
            },
            GpuSource::Vendors { vendors, libraries } => {
                for vendor in vendors {
                    let first = u32::try_from(out.gpus.len()).unwrap_or(u32::MAX);
                    let library = libraries.get(vendor).map(PathBuf::as_path);
                    let collection = match vendor {
                        Vendor::Nvidia => crate::nvml::collect(nonce),
                        Vendor::Amd => crate::amdsmi::collect(first, library),
                        Vendor::Huawei => crate::dcmi::collect(nonce, first, library),
                        Vendor::Biren => crate::brml::collect(first, library),
                    };
                    for mut gpu in collection.gpus {
                        gpu.index = u32::try_from(out.gpus.len()).unwrap_or(u32::MAX);
                        out.gpus.push(gpu);
                    }
                    out.problems.extend(collection.problems);
                }
            }
        }
        out
    }
}

fn replay(files: &[(PathBuf, PathBuf)]) -> Result<Vec<GpuEvidence>, String> {
    files
        .iter()
        .enumerate()
        .map(|(index, (report, chain))| {
            Ok(GpuEvidence {
                index: u32::try_from(index).map_err(|_| "too many GPUs")?,
                vendor: "nvidia".into(),
                report: read_limited(report)?,
                cert_chain_pem: String::from_utf8(read_limited(chain)?)
                    .map_err(|_| format!("{}: not PEM text", chain.display()))?,
                ..Default::default()
            })
        })
        .collect()
}

fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_REPLAY_FILE {
        return Err(format!(
            "{}: {size} bytes is over {MAX_REPLAY_FILE}",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Text a vendor library wrote into a fixed buffer: it must end within the buffer (and within
/// `MAX_TEXT` bytes); invalid UTF-8 is replaced, never trusted.
pub fn c_string(buffer: &[u8], what: &str) -> Result<String, String> {
    let window = buffer.get(..buffer.len().min(MAX_TEXT)).unwrap_or_default();
    let end = window.iter().position(|b| *b == 0).ok_or_else(|| {
        format!(
            "{what}: the library wrote no terminator within {} bytes",
            window.len()
        )
    })?;
    Ok(String::from_utf8_lossy(window.get(..end).unwrap_or_default()).into_owned())
}

/// A C string the library owns (an error text), read at most `MAX_TEXT` bytes far.
///
/// # Safety
/// `pointer` must be null or point to memory readable up to its terminator or `MAX_TEXT`
/// bytes, whichever comes first.
pub unsafe fn c_pointer_string(pointer: *const c_char) -> Option<String> {
    if pointer.is_null() {
        return None;
    }
    let mut bytes = Vec::new();
    for offset in 0..MAX_TEXT {
        // SAFETY: the caller guarantees readability up to the terminator or MAX_TEXT.
        let byte = unsafe { *pointer.add(offset) } as u8;
        if byte == 0 {
            return Some(String::from_utf8_lossy(&bytes).into_owned());
        }
        bytes.push(byte);
    }
    Some(format!("{}...", String::from_utf8_lossy(&bytes)))
}

/// Opens a vendor library: the explicit path (`--gpu-lib`), else the first default name that
/// loads. `what` names the library in errors ("amdsmi").
pub fn open_library(
    explicit: Option<&Path>,
    defaults: &[&str],
    what: &str,
) -> Result<libloading::Library, String> {
    if let Some(path) = explicit {
        // SAFETY: loading a vendor's management library runs its initialisers, which is what
        // every user of it does; no symbol is used before its init call succeeds.
        return unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("{what} at {} cannot be loaded: {e}", path.display()));
    }
    let mut errors = Vec::new();
    for name in defaults {
        // SAFETY: as above.
        match unsafe { libloading::Library::new(name) } {
            Ok(library) => return Ok(library),
            Err(error) => errors.push(format!("{name}: {error}")),
        }
    }
    Err(format!("{what} is not installed ({})", errors.join("; ")))
}

/// A function pointer from `library`, copied out (the caller keeps the library loaded).
///
/// # Safety
/// `T` must be the function's exact C signature.
pub unsafe fn symbol<T: Copy>(library: &libloading::Library, name: &str) -> Result<T, String> {
    // SAFETY: the caller vouches for the signature.
    unsafe { library.get::<T>(name.as_bytes()) }
        .map(|symbol| *symbol)
        .map_err(|e| format!("{name} is missing: {e}"))
}

/// Keeps at most `MAX_DEVICES` of `reported` devices, noting when some are left out.
pub fn bound_devices(reported: u32, what: &str, problems: &mut Vec<String>) -> u32 {
    if reported > MAX_DEVICES {
        problems.push(format!(
            "{what} reports {reported} devices; only {MAX_DEVICES} are read"
        ));
        MAX_DEVICES
    } else {
        reported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_option_lists_vendors_in_index_order() {
        assert_eq!(parse_gpus("all").unwrap(), Vendor::ALL.to_vec());
        assert_eq!(
            parse_gpus("biren,amd,amd").unwrap(),
            vec![Vendor::Amd, Vendor::Biren]
        );
        assert!(parse_gpus("none").unwrap().is_empty());
        assert!(
            parse_gpus("none,amd")
                .unwrap_err()
                .contains("cannot be combined")
        );
        assert!(
            parse_gpus("intel")
                .unwrap_err()
                .contains("unknown vendor \"intel\"")
        );
        assert!(parse_gpus("").is_err());
    }

    #[test]
    fn gpu_lib_option_is_checked() {
        assert_eq!(
            parse_gpu_lib("amd=/opt/x/libamd_smi.so").unwrap(),
            (Vendor::Amd, PathBuf::from("/opt/x/libamd_smi.so"))
        );
        assert!(parse_gpu_lib("amd").unwrap_err().contains("VENDOR=PATH"));
        assert!(parse_gpu_lib("amd=").unwrap_err().contains("empty path"));
        assert!(parse_gpu_lib("nvidia=/x").unwrap_err().contains("NVML"));
        assert!(
            parse_gpu_lib("intel=/x")
                .unwrap_err()
                .contains("unknown vendor")
        );
        let error = GpuSource::from_options("nvidia", &["amd=/x".into()]).unwrap_err();
        assert!(error.contains("amd is not collected"), "{error}");
        let error =
            GpuSource::from_options("all", &["amd=/x".into(), "amd=/y".into()]).unwrap_err();
        assert!(error.contains("more than once"), "{error}");
        assert!(matches!(
            GpuSource::from_options("none", &[]).unwrap(),
            GpuSource::None
        ));
    }

    #[test]
    fn library_text_must_end_inside_its_buffer() {
        assert_eq!(c_string(b"MI300X\0junk", "name").unwrap(), "MI300X");
        assert_eq!(c_string(b"\0", "name").unwrap(), "");
        let error = c_string(b"no end", "ASIC name").unwrap_err();
        assert!(error.starts_with("ASIC name: the library wrote no terminator within 6 bytes"));
        // A terminator past MAX_TEXT does not count.
        let mut long = vec![b'A'; MAX_TEXT + 10];
        long.push(0);
        assert!(c_string(&long, "name").is_err());
        assert_eq!(c_string(b"\xff\0", "name").unwrap(), "\u{fffd}");
    }

    #[test]
    fn library_owned_strings_are_read_a_bounded_distance() {
        let text = c"status ok";
        assert_eq!(
            unsafe { c_pointer_string(text.as_ptr()) }.as_deref(),
            Some("status ok")
        );
        assert_eq!(unsafe { c_pointer_string(std::ptr::null()) }, None);
        let long = vec![b'x' as c_char; MAX_TEXT + 1];
        let read = unsafe { c_pointer_string(long.as_ptr()) }.unwrap();
        assert_eq!(read.len(), MAX_TEXT + 3);
    }

    #[test]
    fn device_counts_are_bounded() {
        let mut problems = Vec::new();
        assert_eq!(bound_devices(8, "amdsmi", &mut problems), 8);
        assert!(problems.is_empty());
        assert_eq!(bound_devices(1000, "amdsmi", &mut problems), MAX_DEVICES);
        assert_eq!(problems, ["amdsmi reports 1000 devices; only 64 are read"]);
    }

    #[test]
    fn a_missing_library_is_said_by_name() {
        let error = open_library(None, &["libvigil-none-such.so"], "amdsmi").unwrap_err();
        assert!(
            error.starts_with("amdsmi is not installed (libvigil-none-such.so:"),
            "{error}"
        );
        let error = open_library(Some(Path::new("/nonexistent/lib.so")), &[], "BRML").unwrap_err();
        assert!(
            error.starts_with("BRML at /nonexistent/lib.so cannot be loaded"),
            "{error}"
        );
    }
}
