//! Any bytes as a RIM (SWID tag XML with an enveloped XML-DSig signature): the SWID parser,
//! Canonical XML 1.1 of both signed node-sets, and the signature and KeyInfo chain check
//! against the pinned RIM root at a fixed time. Must never panic, hang or allocate without
//! bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_nvidia::rim::xmldsig::canonical_forms;
use vigil_nvidia::rim::{check_rim_signature, parse_rim};
use vigil_nvidia::roots::rim_root_der;

/// 2026-05-01T00:00:00Z, inside the validity of NVIDIA's RIM signers at the time.
const AT: i64 = 1_777_593_600;

fuzz_target!(|data: &[u8]| {
    let xml = String::from_utf8_lossy(data);
    if let Ok(rim) = parse_rim("fuzz", &xml) {
        let _ = rim.active_measurements().count();
    }
    let _ = canonical_forms("fuzz", &xml);
    let _ = check_rim_signature("fuzz", &xml, &rim_root_der(), AT);
});
