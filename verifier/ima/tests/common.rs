//! Where the real evidence of other projects lives (`$VIGIL_FIXTURES`).

use std::path::{Path, PathBuf};

/// `$VIGIL_FIXTURES` (default `../shared/fixtures` beside the workspace) if `marker` exists
/// there. With `CI` set, missing fixtures fail the test; otherwise the test says loudly that
/// it was skipped and returns `None`.
pub fn fixtures(marker: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"));
    if dir.join(marker).exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the fixtures are missing at {}",
        dir.display()
    );
    eprintln!(
        "SKIPPED: fixtures not found at {} (set VIGIL_FIXTURES)",
        dir.display()
    );
    None
}
