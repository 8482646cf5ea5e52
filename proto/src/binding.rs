//! How a TPM quote commits to the verifier's nonce and to the GPU evidence.
//!
//! The quote's qualifying data is `SHA-256("vigil-v1" || nonce || gpu_evidence_digest)`.
//! Hashing the GPU reports into the quote means a GPU report from another session
//! cannot be paired with this host's quote (see `docs/architecture.md`).

use crate::v1::GpuEvidence;
use ring::digest::{Context, SHA256};

/// Domain separation label: a Vigil quote can never be mistaken for another protocol's.
pub const DOMAIN_LABEL: &[u8] = b"vigil-v1";

/// Size of the verifier's nonce in bytes.
pub const NONCE_LEN: usize = 32;

/// SHA-256 over every GPU's evidence, each field length-prefixed (u64 big-endian), the
/// firmware list count-prefixed, so that no two different lists of evidence hash alike. An
/// empty list hashes the empty string.
pub fn gpu_evidence_digest(gpus: &[GpuEvidence]) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    for gpu in gpus {
        ctx.update(&u64::from(gpu.index).to_be_bytes());
        for field in [
            gpu.vendor.as_bytes(),
            gpu.report.as_slice(),
            gpu.cert_chain_pem.as_bytes(),
            gpu.uuid.as_bytes(),
            gpu.name.as_bytes(),
            gpu.driver_version.as_bytes(),
            gpu.vbios_version.as_bytes(),
            gpu.inforom_version.as_bytes(),
            gpu.cc_mode.as_bytes(),
            gpu.kind.as_bytes(),
            gpu.format.as_bytes(),
            gpu.evidence.as_slice(),
            gpu.serial.as_bytes(),
            gpu.part_number.as_bytes(),
        ] {
            ctx.update(&(field.len() as u64).to_be_bytes());
            ctx.update(field);
        }
        ctx.update(&(gpu.firmware.len() as u64).to_be_bytes());
        for firmware in &gpu.firmware {
            for field in [firmware.id.as_bytes(), firmware.version.as_bytes()] {
                ctx.update(&(field.len() as u64).to_be_bytes());
                ctx.update(field);
            }
        }
    }
    to_array(ctx.finish())
}

/// The qualifying data (TPM `extraData`) a quote must carry for `nonce` and `gpus`.
pub fn qualifying_data(nonce: &[u8], gpus: &[GpuEvidence]) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    ctx.update(DOMAIN_LABEL);
    ctx.update(nonce);
    ctx.update(&gpu_evidence_digest(gpus));
    to_array(ctx.finish())
}

fn to_array(digest: ring::digest::Digest) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(report: &[u8]) -> GpuEvidence {
        GpuEvidence {
            index: 0,
            vendor: "nvidia".into(),
            report: report.to_vec(),
            cert_chain_pem: String::new(),
            uuid: String::new(),
            ..Default::default()
        }
    }

    #[test]
    fn binding_changes_with_nonce_and_with_gpu_evidence() {
        let n1 = [1u8; 32];
        let n2 = [2u8; 32];
        let base = qualifying_data(&n1, &[]);
        assert_ne!(base, qualifying_data(&n2, &[]));
        assert_ne!(base, qualifying_data(&n1, &[gpu(b"report")]));
        assert_ne!(
            qualifying_data(&n1, &[gpu(b"report-a")]),
            qualifying_data(&n1, &[gpu(b"report-b")])
        );
    }

    #[test]
    fn length_prefixes_keep_field_boundaries_apart() {
        let mut a = gpu(b"ab");
        a.uuid = "c".into();
        let mut b = gpu(b"a");
        b.uuid = "bc".into();
        assert_ne!(gpu_evidence_digest(&[a]), gpu_evidence_digest(&[b]));
    }

    #[test]
    fn every_inventory_field_and_firmware_entry_is_bound() {
        use crate::v1::FirmwareVersion;
        let firmware = |id: &str, version: &str| FirmwareVersion {
            id: id.into(),
            version: version.into(),
        };
        let mut base = gpu(b"");
        base.vendor = "amd".into();
        base.kind = "host-reported".into();
        base.firmware = vec![firmware("PSP_SOSDRV", "00.36.02.59")];
        let digest = gpu_evidence_digest(std::slice::from_ref(&base));
        type Change<'a> = Box<dyn Fn(&mut GpuEvidence) + 'a>;
        let changes: Vec<Change<'_>> = vec![
            Box::new(|g| g.kind = "device-signed".into()),
            Box::new(|g| g.format = "amdsmi-inventory".into()),
            Box::new(|g| g.evidence = b"x".to_vec()),
            Box::new(|g| g.serial = "s".into()),
            Box::new(|g| g.part_number = "p".into()),
            Box::new(|g| g.firmware[0].version = "00.36.02.60".into()),
            Box::new(|g| g.firmware[0].id = "SMC".into()),
            Box::new(|g| g.firmware.push(firmware("SMC", "1"))),
            Box::new(|g| g.firmware.clear()),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(gpu_evidence_digest(&[changed]), digest, "change {i}");
        }
        // An id/version boundary cannot be moved.
        let mut a = base.clone();
        a.firmware = vec![firmware("AB", "C")];
        let mut b = base.clone();
        b.firmware = vec![firmware("A", "BC")];
        assert_ne!(gpu_evidence_digest(&[a]), gpu_evidence_digest(&[b]));
    }
}
