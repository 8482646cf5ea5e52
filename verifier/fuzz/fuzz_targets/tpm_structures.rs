//! Any bytes as TPM structures and tpm2-tools PCR files. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_verifier::evidence::tpm::pcr_files::parse_pcr_file;
use vigil_verifier::evidence::tpm::structures::{
    decode_ak_public, decode_attest, decode_signature,
};

fuzz_target!(|data: &[u8]| {
    let _ = decode_attest(data);
    let _ = decode_signature(data);
    let _ = decode_ak_public(data);
    if let Ok(attest) = decode_attest(data)
        && let Some(quote) = attest.quote
    {
        let _ = parse_pcr_file(data, &quote.selection);
    }
    let _ = parse_pcr_file(data, &Vec::new());
});
