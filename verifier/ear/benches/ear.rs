//! Cost of signing and of offline verification of a typical result (TPM + 8 GPUs).

use std::collections::BTreeMap;
use std::path::PathBuf;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use vigil_ear::{
    EAR_PROFILE, Ear, Jwks, ResultSigningKey, Status, Submodule, TrustVector, VerifierId, ar4si,
    verify,
};

fn typical_ear() -> Ear {
    let affirming = Submodule {
        status: Status::Affirming,
        trust_vector: TrustVector {
            instance_identity: ar4si::INSTANCE_IDENTITY_TRUSTED,
            configuration: ar4si::CONFIGURATION_APPROVED,
            executables: ar4si::EXECUTABLES_APPROVED_BOOT,
            hardware: ar4si::HARDWARE_GENUINE,
            ..TrustVector::default()
        },
        policy_id: Some("vigil:baseline/default@7".to_owned()),
        detail: None,
    };
    let mut submods = BTreeMap::new();
    submods.insert("tpm".to_owned(), affirming.clone());
    for gpu in 0..8 {
        submods.insert(format!("gpu{gpu}"), affirming.clone());
    }
    Ear {
        profile: EAR_PROFILE.to_owned(),
        issued_at: 1_800_000_000,
        expires_at: 1_800_000_300,
        nonce: Some(vec![7; 32]),
        verifier_id: VerifierId {
            developer: "https://vigil.example".to_owned(),
            build: "vigil 0.1.0".to_owned(),
        },
        submods,
        subject: "node-0001".to_owned(),
        baseline_version: Some("7".to_owned()),
    }
}

fn key() -> ResultSigningKey {
    let dir: PathBuf = std::env::temp_dir().join(format!("vigil-ear-bench-{}", std::process::id()));
    let key = ResultSigningKey::load_or_generate(&dir.join("result-key.pk8")).expect("bench key");
    let _ = std::fs::remove_dir_all(&dir);
    key
}

fn bench(c: &mut Criterion) {
    let key = key();
    let ear = typical_ear();
    let keys = Jwks {
        keys: vec![key.public_jwk()],
    };
    let token = key.sign(&ear).expect("sign");
    c.bench_function("sign (tpm + 8 gpus)", |b| {
        b.iter(|| key.sign(black_box(&ear)).expect("sign"))
    });
    c.bench_function("verify (tpm + 8 gpus)", |b| {
        b.iter(|| verify(black_box(&token), &keys, 1_800_000_100).expect("verify"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
