//! Any bytes as an event log: parse, and when it parses, replay, extract claims and render.
//! Must never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_verifier::evidence::eventlog::{claims, parse, render, replay};

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = parse(data) {
        let _ = replay(&log);
        let _ = claims(&log);
        let _ = render::render_text(&log);
    }
});
