//! Any bytes as a GPU attestation report (NVIDIA's hex text or raw SPDM): parse, and when it
//! parses, read every decoded field, render it, and run the whole verification (which fails
//! on the missing chain but still derives the report's claims). Must never panic, hang or
//! allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_nvidia::{VerifyOptions, parse_report, parse_report_input, verify_gpu_evidence_with};

/// 2026-05-01T00:00:00Z: a fixed verification time keeps runs reproducible.
const AT: i64 = 1_777_593_600;

fuzz_target!(|data: &[u8]| {
    let _ = parse_report(data);
    if let Ok(report) = parse_report_input(data) {
        let _ = report.to_string();
        let _ = (report.signed_bytes(), report.signature(), report.bytes());
        for index in 0..=u8::MAX {
            let _ = report
                .block(index)
                .map(|b| (b.is_raw_bit_stream(), b.value_kind()));
        }
        let opaque = &report.response.opaque;
        let _ = (
            opaque.driver_version(),
            opaque.vbios_version(),
            opaque.chip_sku(),
        );
        let _ = (opaque.project(), opaque.project_sku(), opaque.fwid());
        let _ = (opaque.feature_flag(), opaque.protected_pcie_status());
        let _ = (opaque.nvdec0_status(), opaque.opaque_data_version());
        let _ = opaque.measurement_counts();
        let nonce = [0u8; 32];
        let options = VerifyOptions {
            expected_nonce: Some(&nonce),
            ..VerifyOptions::at(AT)
        };
        let _ = verify_gpu_evidence_with(data, "", &options).to_string();
    }
});
