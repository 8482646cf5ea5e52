//! Cabinets (TrustedTpm.cab): any bytes extract within bounds or fail with a located error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(files) = vigil_verifier::registration::cab::read_cabinet(data) {
        for file in files {
            assert!(
                !file
                    .name
                    .split('/')
                    .any(|part| part == ".." || part.is_empty())
            );
        }
    }
});
