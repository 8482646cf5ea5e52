//! The NVIDIA roots Vigil pins (see `certs/nvidia/PROVENANCE.md`), and operator-configured
//! replacements for them. A root supplied inside an evidence chain is never trusted by
//! itself: it must be byte-identical to a trusted root or be issued by one.

use std::path::Path;
use std::sync::OnceLock;

/// Root of GPU and NVSwitch device identity chains ("NVIDIA Device Identity CA").
pub const NVIDIA_DEVICE_ROOT_PEM: &str =
    include_str!("../../../certs/nvidia/verifier_device_root.pem");
/// Root of RIM signing chains ("NVIDIA CoRIM signing Root CA").
pub const NVIDIA_RIM_ROOT_PEM: &str = include_str!("../../../certs/nvidia/verifier_RIM_root.pem");

/// DER of the pinned device identity root.
pub fn device_root_der() -> Vec<u8> {
    single_pem_der(NVIDIA_DEVICE_ROOT_PEM)
}

/// DER of the pinned RIM signing root.
pub fn rim_root_der() -> Vec<u8> {
    single_pem_der(NVIDIA_RIM_ROOT_PEM)
}

/// The pinned device root as a one-root list, decoded once.
pub fn pinned_device_roots() -> &'static [Vec<u8>] {
    static ROOTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ROOTS.get_or_init(|| vec![device_root_der()])
}

/// The pinned RIM root as a one-root list, decoded once.
pub fn pinned_rim_roots() -> &'static [Vec<u8>] {
    static ROOTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    ROOTS.get_or_init(|| vec![rim_root_der()])
}

/// Roots an operator configured in place of NVIDIA's (`--gpu-roots`, `--rim-roots`); each
/// `None` keeps the pinned root. Device and RIM roots never stand in for each other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuRoots {
    pub device: Option<Vec<Vec<u8>>>,
    pub rim: Option<Vec<Vec<u8>>>,
}

/// Most root certificates read from one directory, and the largest file read.
pub const MAX_ROOTS: usize = 64;
pub const MAX_ROOT_FILE_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootsError {
    #[error("{path}: {reason}")]
    Directory { path: String, reason: String },
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

/// Root certificates from every regular file directly in `dir` (PEM with one or more
/// CERTIFICATE blocks, or one DER certificate), in file-name order. An empty directory, an
/// unreadable file or a file that is not certificates is an error naming it: a typo must
/// not leave the verifier trusting nothing or something unintended.
pub fn load_roots_dir(dir: &Path) -> Result<Vec<Vec<u8>>, RootsError> {
    let bad_dir = |reason: String| RootsError::Directory {
        path: dir.display().to_string(),
        reason,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| bad_dir(e.to_string()))? {
        let path = entry.map_err(|e| bad_dir(e.to_string()))?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden && !path.is_dir() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut roots = Vec::new();
    for path in &paths {
        for der in load_root_file(path)? {
            if roots.len() >= MAX_ROOTS {
                return Err(bad_dir(format!("more than {MAX_ROOTS} certificates")));
            }
            roots.push(der);
        }
    }
    if roots.is_empty() {
        return Err(bad_dir("no certificate files in the directory".into()));
    }
    Ok(roots)
}

fn load_root_file(path: &Path) -> Result<Vec<Vec<u8>>, RootsError> {
    let bad = |reason: String| RootsError::File {
        path: path.display().to_string(),
        reason,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| bad(e.to_string()))?
        .len();
    if size > MAX_ROOT_FILE_BYTES {
        return Err(bad(format!(
            "{size} bytes; a certificate file is at most {MAX_ROOT_FILE_BYTES}"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let is_pem = bytes.windows(10).any(|w| w == b"-----BEGIN");
    let ders = if is_pem {
        let text = std::str::from_utf8(&bytes).map_err(|e| bad(format!("PEM is not text: {e}")))?;
        crate::chain::pem_certificates(text).map_err(|e| bad(e.to_string()))?
    } else {
        vec![bytes]
    };
    for (index, der) in ders.iter().enumerate() {
        let parsed = <x509_parser::certificate::X509Certificate as x509_parser::prelude::FromDer<
            _,
        >>::from_der(der);
        match parsed {
            Ok(([], _)) => {}
            Ok((rest, _)) => {
                return Err(bad(format!(
                    "certificate {index}: {} bytes after the certificate",
                    rest.len()
                )));
            }
            Err(e) => {
                return Err(bad(format!(
                    "certificate {index} is not X.509 DER or PEM: {e}"
                )));
            }
        }
    }
    Ok(ders)
}

fn single_pem_der(pem: &str) -> Vec<u8> {
    // The embedded files are fixed at build time; the unit tests below prove they decode.
    crate::chain::pem_certificates(pem)
        .ok()
        .and_then(|mut certs| certs.pop())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("vigil-roots-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn roots_load_from_pem_and_der_files() {
        let dir = temp_dir("ok");
        std::fs::write(dir.join("device.pem"), NVIDIA_DEVICE_ROOT_PEM).unwrap();
        std::fs::write(dir.join("rim.der"), rim_root_der()).unwrap();
        std::fs::write(dir.join(".hidden"), "ignored").unwrap();
        let roots = load_roots_dir(&dir).unwrap();
        assert_eq!(roots, vec![device_root_der(), rim_root_der()]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_empty_directory_or_a_bad_file_is_refused_by_name() {
        let dir = temp_dir("bad");
        let err = load_roots_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("no certificate files"), "{err}");
        std::fs::write(dir.join("a.pem"), NVIDIA_DEVICE_ROOT_PEM).unwrap();
        std::fs::write(dir.join("junk.crt"), b"not a certificate").unwrap();
        let err = load_roots_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("junk.crt"), "{err}");
        std::fs::write(dir.join("junk.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let err = load_roots_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("junk.crt"), "{err}");
        let missing = dir.join("missing");
        let err = load_roots_dir(&missing).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pinned_roots_decode_and_are_the_expected_certificates() {
        let device = device_root_der();
        let (_, cert) = X509Certificate::from_der(&device).unwrap();
        assert_eq!(
            cert.subject().to_string(),
            "CN=NVIDIA Device Identity CA, O=NVIDIA"
        );
        assert_eq!(
            hex::encode(ring::digest::digest(&ring::digest::SHA256, &device)),
            "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"
        );
        let rim = rim_root_der();
        let (_, cert) = X509Certificate::from_der(&rim).unwrap();
        assert_eq!(
            cert.subject().to_string(),
            "C=US, O=NVIDIA, CN=NVIDIA CoRIM signing Root CA"
        );
        assert_eq!(
            hex::encode(ring::digest::digest(&ring::digest::SHA256, &rim)),
            "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1"
        );
    }
}
