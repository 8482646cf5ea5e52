//! Any bytes as an IMA measurement list, binary (SHA-1 and SHA-256 template hashes) and ASCII:
//! decode every entry, replay against fixed quoted values, parse and verify every file
//! signature; the bytes as a signature header and as a key file too. Must never panic, hang
//! or allocate without bound.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vigil_ima::{
    HashAlg, MeasurementList, Quoted, ReplayState, VerificationKey, ascii, decode, list,
    parse_keys, parse_signature, replay, verify,
};

/// PCR values no list reaches by chance, in both banks for every PCR, so that replay runs
/// through every entry and follows every PCR a list names.
fn quoted() -> &'static Quoted {
    static QUOTED: OnceLock<Quoted> = OnceLock::new();
    QUOTED.get_or_init(|| {
        let mut quoted = Quoted::new();
        for pcr in 0..24 {
            quoted.insert((HashAlg::Sha1, pcr), vec![0x5a; 20]);
            quoted.insert((HashAlg::Sha256, pcr), vec![0x5a; 32]);
        }
        quoted
    })
}

fn keys() -> &'static [VerificationKey] {
    static KEYS: OnceLock<Vec<VerificationKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = Vec::new();
        for (label, bytes) in [
            (
                "p256.pub.pem",
                &include_bytes!("../../ima/tests/data/p256.pub.pem")[..],
            ),
            (
                "rsa2048.crt.pem",
                &include_bytes!("../../ima/tests/data/rsa2048.crt.pem")[..],
            ),
        ] {
            keys.extend(parse_keys(label, bytes).expect("the test keys parse"));
        }
        keys
    })
}

fn check(list: &MeasurementList<'_>) {
    for entry in &list.entries {
        if let Ok(measurement) = decode(entry)
            && let Some(signature) = &measurement.signature
        {
            let _ = parse_signature(signature);
            let _ = verify(&measurement, keys());
        }
    }
    let _ = replay(
        &list.entries,
        list.template_hash,
        &ReplayState::boot(),
        quoted(),
    );
}

fuzz_target!(|data: &[u8]| {
    for alg in [HashAlg::Sha1, HashAlg::Sha256] {
        if let Ok(list) = list::parse_binary(data, alg, 0) {
            check(&list);
        }
        let _ = list::binary_entry_offsets(data, alg);
    }
    if let Ok(list) = ascii::parse_ascii(data, 0) {
        check(&list);
    }
    let _ = parse_signature(data);
    let _ = parse_keys("fuzz", data);
});
