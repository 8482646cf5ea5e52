//! `vigil gpu verify` on NVIDIA's real Hopper sample (read in place): authentic and matching
//! its RIMs when they were valid, failing now that the RIM signer has expired, and failing on
//! a foreign nonce.

mod common;

use std::process::Command;

const NONCE: &str = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb";

fn gpu_verify(root: &std::path::Path, nonce: &str, at: &str) -> i32 {
    let samples = root.join("nv-local-gpu-verifier-2.7.3/samples");
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["gpu", "verify", "--report"])
        .arg(samples.join("hopperAttestationReport.txt"))
        .arg("--cert-chain")
        .arg(samples.join("hopperCertChain.txt"))
        .arg("--rim-dir")
        .arg(root.join("nvidia-rims-matching"))
        .args(["--nonce", nonce, "--at", at, "--json"])
        .output()
        .unwrap()
        .status
        .code()
        .unwrap_or(-1)
}

#[test]
fn the_hopper_sample_passes_while_its_rims_are_valid_and_fails_after() {
    let Some(root) = common::fixtures("nvidia-rims-matching") else {
        return;
    };
    assert_eq!(gpu_verify(&root, NONCE, "2026-05-01T00:00:00Z"), 0);
    assert_eq!(
        gpu_verify(&root, NONCE, "2026-11-28T00:00:00Z"),
        1,
        "the RIM signer expired on 2026-06-01"
    );
    assert_eq!(
        gpu_verify(&root, &"00".repeat(32), "2026-05-01T00:00:00Z"),
        1,
        "foreign nonce"
    );
}
