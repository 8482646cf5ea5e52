//! The fake vendor libraries in `tests/fakes/` (amdsmi, DCMI, BRML stand-ins written in C),
//! compiled on demand so end-to-end tests can point `vigil-attester --gpu-lib VENDOR=PATH` at
//! them. See `tests/fakes/README.md` for what each answers and the environment variables that
//! vary it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Compiles `tests/fakes/<name>.c` (e.g. `fake_amdsmi`) with
/// `cc -shared -fPIC -O1 -o <target-dir>/fakes/lib<name>.so`, once per test process, and
/// returns the library's path. Panics with the reason when `cc` is missing or fails.
pub fn build_fake(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fakes")
        .join(format!("{name}.c"));
    assert!(
        source.is_file(),
        "no fake library source {}",
        source.display()
    );
    // bin_dir() is target/<profile>; the fakes live beside the profiles.
    let target = crate::bin_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(crate::bin_dir);
    let dir = target.join("fakes");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let library = dir.join(format!("lib{name}.so"));
    // Other test processes may build the same fake: build aside, then rename into place.
    let partial = dir.join(format!("lib{name}.so.{}", std::process::id()));
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&partial)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("running cc for {}: {e} (install gcc)", source.display()));
    assert!(status.success(), "cc failed on {}", source.display());
    std::fs::rename(&partial, &library)
        .unwrap_or_else(|e| panic!("moving {} into place: {e}", library.display()));
    built.insert(name.to_owned(), library.clone());
    library
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fake_builds_once_into_the_target_directory() {
        for name in ["fake_amdsmi", "fake_dcmi", "fake_brml"] {
            let first = build_fake(name);
            assert!(first.is_file(), "{}", first.display());
            assert!(first.ends_with(format!("fakes/lib{name}.so")));
            assert_eq!(build_fake(name), first);
        }
    }
}
