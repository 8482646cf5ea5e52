//! Baseline files: any text is a validated baseline or a located error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(baseline) = vigil_verifier::baseline::parse_baseline("fuzz.toml", &text) {
        for rule in &baseline.rules {
            let _ = rule.expect.to_string();
        }
    }
});
