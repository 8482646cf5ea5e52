//! The NVIDIA roots Vigil pins (see `certs/nvidia/PROVENANCE.md`). A root supplied inside an
//! evidence chain is never trusted by itself: it must be byte-identical to one of these.

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
