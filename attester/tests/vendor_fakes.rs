//! The real `vigil-attester gpus` against the fake vendor libraries in `tests/fakes/` (C,
//! compiled here with `cc`): every vendor is listed, missing libraries are notes, failing
//! devices stay listed, and oversized counts and strings are bounded, not a crash.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Compiles `tests/fakes/<name>.c` once per test process; returns the shared library.
fn fake(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fakes")
        .join(format!("{name}.c"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fakes");
    std::fs::create_dir_all(&dir).unwrap();
    let library = dir.join(format!("lib{name}.so"));
    // Another test process may build the same fake: build aside, then rename into place.
    let partial = dir.join(format!("lib{name}.so.{}", std::process::id()));
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&partial)
        .arg(&source)
        .status()
        .expect("cc (gcc) must be installed to build the fake vendor libraries");
    assert!(status.success(), "cc failed on {}", source.display());
    std::fs::rename(&partial, &library).unwrap();
    built.insert(name.to_owned(), library.clone());
    library
}

struct Run {
    output: Output,
    stdout: String,
}

impl Run {
    fn lines(&self, prefix: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }
    fn devices(&self, vendor: &str) -> Vec<&str> {
        let needle = format!("vendor={vendor} ");
        self.lines("GPU ")
            .into_iter()
            .filter(|l| l.contains(&needle))
            .collect()
    }
    fn notes(&self) -> Vec<&str> {
        self.lines("note: ")
    }
}

/// `vigil-attester gpus` with the three fakes, `args` after them, and `env` set.
fn gpus(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil-attester"));
    command.arg("gpus");
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("FAKE_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    Run { output, stdout }
}

fn lib(vendor: &str, name: &str) -> String {
    format!("{vendor}={}", fake(name).display())
}

fn all_fakes() -> Vec<String> {
    vec![
        "--gpus".into(),
        "all".into(),
        "--gpu-lib".into(),
        lib("amd", "fake_amdsmi"),
        "--gpu-lib".into(),
        lib("huawei", "fake_dcmi"),
        "--gpu-lib".into(),
        lib("biren", "fake_brml"),
    ]
}

fn run_all(env: &[(&str, &str)]) -> Run {
    let args = all_fakes();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    gpus(&args, env)
}

#[test]
fn every_vendor_is_listed_in_one_index_order() {
    let run = run_all(&[("FAKE_AMDSMI_FW_PSP_SOSDRV", "0x00360260")]);
    assert!(run.output.status.success(), "{run:?}", run = run.stdout);
    let amd = run.devices("amd");
    assert_eq!(amd.len(), 8, "{}", run.stdout);
    assert!(amd.iter().all(|l| {
        l.contains("kind=host-reported format=amdsmi-inventory name=\"AMD Instinct MI300X\"")
    }));
    assert!(
        amd[0].contains("vbios=022.040.003.043.000001 serial=PCB079200-0071 part=113-M3000100-102")
    );
    // Every AMD GPU carries its firmware list, in amd-smi's names and formats.
    assert_eq!(run.lines("  firmware PSP_SOSDRV: 00.36.02.60").len(), 8);
    assert_eq!(run.lines("  firmware PM: 00.85.100.00").len(), 8);
    assert_eq!(run.lines("  firmware TA_XGMI: 20.00.00.10").len(), 8);
    let npus = run.devices("huawei");
    assert_eq!(npus.len(), 8);
    assert!(npus.iter().all(|l| {
        l.contains("kind=host-reported format=dcmi-inventory name=\"Ascend 910B3\"")
            && l.contains("driver=24.1.rc2")
            && l.contains("part=IT21PMBB")
    }));
    assert_eq!(run.lines("  firmware UEFI: 7.1.0.5.220").len(), 8);
    let biren = run.devices("biren");
    assert_eq!(biren.len(), 1);
    assert!(biren[0].contains(
        "kind=host-reported format=brml-inventory name=\"Biren BR104\" uuid=GPU-5f2c9a10-4b3e-11ee-9d0a-000000000000 driver=1.5.0 vbios=3.2.1.15 serial=BR104230700000 part=BR104-P-64G-A1"
    ));
    assert_eq!(run.lines("  firmware PMU: 1.0.26").len(), 1);
    // One index order across vendors: NVIDIA (none here), AMD, Huawei, Biren.
    let indices: Vec<String> = run
        .lines("GPU ")
        .iter()
        .map(|l| l.split(':').next().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (0..indices.len()).map(|i| format!("GPU {i}")).collect();
    assert_eq!(indices, expected);
    // A host with NVML lists its NVIDIA GPUs first.
    let nvidia = run.devices("nvidia").len();
    assert!(amd[0].starts_with(&format!("GPU {nvidia}: ")));
    assert!(npus[0].starts_with(&format!("GPU {}: ", nvidia + 8)));
    assert!(biren[0].starts_with(&format!("GPU {}: ", nvidia + 16)));
}

#[test]
fn a_missing_library_is_a_note_not_an_error() {
    let run = gpus(
        &[
            "--gpus",
            "amd,biren",
            "--gpu-lib",
            "amd=/nonexistent/libamd_smi.so",
            "--gpu-lib",
            &lib("biren", "fake_brml"),
        ],
        &[],
    );
    assert!(run.output.status.success());
    assert!(run.devices("amd").is_empty());
    assert_eq!(run.devices("biren").len(), 1);
    assert!(
        run.notes().iter().any(|n| n.starts_with(
            "note: no AMD GPU: amdsmi at /nonexistent/libamd_smi.so cannot be loaded"
        )),
        "{}",
        run.stdout
    );
    // No library at all: no GPU evidence, still success.
    let run = gpus(
        &[
            "--gpus",
            "huawei",
            "--gpu-lib",
            "huawei=/nonexistent/libdcmi.so",
        ],
        &[],
    );
    assert!(run.output.status.success());
    assert!(run.stdout.contains("no GPU evidence"));
    assert!(
        run.stdout
            .contains("note: no Huawei NPU: DCMI at /nonexistent/libdcmi.so")
    );
}

#[test]
fn oversized_counts_and_strings_are_bounded_not_a_crash() {
    let run = run_all(&[
        ("FAKE_AMDSMI_DEVICES", "1000"),
        ("FAKE_AMDSMI_FW_COUNT", "255"),
        ("FAKE_AMDSMI_LONG_STRINGS", "1"),
        ("FAKE_DCMI_NPUS", "100000"),
        ("FAKE_DCMI_COMPONENTS", "4000000"),
        ("FAKE_DCMI_LONG_STRINGS", "1"),
        ("FAKE_BRML_DEVICES", "70"),
        ("FAKE_BRML_LONG_STRINGS", "1"),
    ]);
    assert!(
        run.output.status.success(),
        "{}",
        String::from_utf8_lossy(&run.output.stderr)
    );
    assert_eq!(run.devices("amd").len(), 64);
    assert_eq!(run.devices("huawei").len(), 64);
    assert_eq!(run.devices("biren").len(), 64);
    let notes = run.notes();
    for expected in [
        "note: amdsmi reports 1000 devices; only 64 are read",
        "note: amdsmi: GPU 0 firmware: 255 entries reported; only 64 are read",
        "note: amdsmi: GPU 0 ASIC info: ASIC market name: the library wrote no terminator within 256 bytes",
        "note: DCMI reports 100000 cards; only 64 are read",
        "note: DCMI: NPU 0/0 firmware: 4000000 components reported; only 64 are read",
        "note: DCMI: driver version: driver version: the library wrote no terminator within 256 bytes",
        "note: DCMI: NPU 0/0 electronic label: serial number: the library wrote no terminator within 256 bytes",
        "note: BRML reports 70 devices; only 64 are read",
        "note: BRML: GPU 0 UUID: brmlDeviceGetUUID: the library wrote no terminator within 256 bytes",
    ] {
        assert!(
            notes.contains(&expected),
            "missing {expected:?} in {notes:#?}"
        );
    }
    // An AMD GPU whose ASIC name is unreadable is named by its board.
    assert!(run.devices("amd")[0].contains("name=\"Aqua Vanjaram [Instinct MI300X]\""));
    // 64 firmware entries each, no more.
    let amd_firmware = run.stdout.split("GPU 1: ").next().unwrap_or_default();
    assert_eq!(amd_firmware.matches("\n  firmware ").count(), 64);
}

#[test]
fn a_failing_device_stays_listed_with_what_could_be_read() {
    let run = run_all(&[
        ("FAKE_AMDSMI_FAIL_DEVICE", "3"),
        ("FAKE_DCMI_FAIL_DEVICE", "2"),
        ("FAKE_BRML_FAIL_DEVICE", "0"),
    ]);
    assert!(run.output.status.success());
    assert_eq!(run.devices("amd").len(), 8);
    assert!(run.devices("amd")[3].contains("uuid=- "));
    assert_eq!(run.devices("huawei").len(), 8);
    assert!(run.devices("huawei")[2].contains("name=\"\""));
    assert_eq!(run.devices("biren").len(), 1);
    let notes = run.notes();
    for expected in [
        "note: amdsmi: GPU 3 UUID: amdsmi_get_gpu_device_uuid: AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported (status 2)",
        "note: DCMI: NPU 2/0 chip info: dcmi_get_device_chip_info returned -8255",
        "note: BRML: GPU 0 GPU info: brmlDeviceGetGpuInfo: Unknown Error (code 255)",
    ] {
        assert!(
            notes.contains(&expected),
            "missing {expected:?} in {notes:#?}"
        );
    }
}

#[test]
fn an_amdsmi_of_another_major_version_is_not_read() {
    let run = gpus(
        &["--gpus", "amd", "--gpu-lib", &lib("amd", "fake_amdsmi")],
        &[("FAKE_AMDSMI_VERSION_MAJOR", "25")],
    );
    assert!(run.output.status.success());
    assert!(run.devices("amd").is_empty());
    assert!(run.stdout.contains(
        "note: no AMD GPU: amdsmi library version 25.1.0 is not 26.x, whose struct layouts this attester reads"
    ));
}

#[test]
fn bad_options_are_refused() {
    let run = gpus(&["--gpus", "intel"], &[]);
    assert_eq!(run.output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.output.stderr).contains("unknown vendor \"intel\""));
    let run = gpus(&["--gpus", "nvidia", "--gpu-lib", "amd=/x.so"], &[]);
    assert_eq!(run.output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.output.stderr).contains("amd is not collected"));
}

fn challenge(nonce: &[u8; 32], index: u32) -> Vec<u8> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"vigil-npu-v1");
    context.update(nonce);
    context.update(&index.to_be_bytes());
    context.finish().as_ref().to_vec()
}

/// A scratch directory for the attesting fake.
fn attest_dir(label: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("attest-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn attesting_npus_send_the_gta_document_for_their_challenge() {
    let dir = attest_dir("gta");
    let nonce = [0x5eu8; 32];
    // The test "is" the NPU: it knows the challenge in advance (nonce and index) and puts a
    // TPMS_ATTEST-like quote over it; the fake can only copy files.
    let mut quote = b"\xffTCG\x80\x18\x00\x22".to_vec();
    quote.extend(challenge(&nonce, 1));
    std::fs::write(dir.join("quote.bin"), &quote).unwrap();
    std::fs::write(dir.join("signature.bin"), b"\x00\x18\x00\x0bsig").unwrap();
    let mut pcrs = 0u32.to_le_bytes().to_vec();
    pcrs.extend([0x11; 32]);
    pcrs.extend(9u32.to_le_bytes());
    pcrs.extend([0x22; 32]);
    std::fs::write(dir.join("pcrs.bin"), &pcrs).unwrap();
    std::fs::write(dir.join("boot.log"), b"boot events").unwrap();
    std::fs::write(dir.join("ima.log"), b"10 abc ima-ng sha256:00 /init").unwrap();
    std::fs::write(dir.join("iak.der"), [0x30, 0x03, 1, 2, 3]).unwrap();
    let dir_text = dir.display().to_string();
    let run = gpus(
        &[
            "--gpus",
            "huawei",
            "--gpu-lib",
            &lib("huawei", "fake_dcmi"),
            "--nonce",
            &hex::encode(nonce),
        ],
        &[("FAKE_DCMI_ATTEST_DIR", &dir_text), ("FAKE_DCMI_NPUS", "2")],
    );
    assert!(run.output.status.success());
    let npus = run.devices("huawei");
    assert_eq!(npus.len(), 2, "{}", run.stdout);
    assert!(
        npus.iter()
            .all(|l| l.contains("kind=device-signed format=ascend-attestation"))
    );
    // Each NPU was asked for its own challenge.
    for index in 0..2u32 {
        let seen = std::fs::read(dir.join(format!("challenge-{index}.bin"))).unwrap();
        assert_eq!(seen, challenge(&nonce, index), "NPU {index}");
    }
    let documents: Vec<serde_json::Value> = run
        .lines("  evidence: ")
        .iter()
        .map(|l| serde_json::from_str(l.trim_start_matches("  evidence: ")).unwrap())
        .collect();
    assert_eq!(documents.len(), 2);
    let document = &documents[1];
    assert_eq!(document["ak_cert"], "MAMBAgM=");
    let quote_data = BASE64
        .decode(document["quote"]["quote_data"].as_str().unwrap())
        .unwrap();
    assert_eq!(quote_data, quote);
    assert!(quote_data.ends_with(&challenge(&nonce, 1)));
    assert_eq!(
        document["quote"]["signature"],
        BASE64.encode(b"\x00\x18\x00\x0bsig")
    );
    assert_eq!(
        document["pcrs"],
        serde_json::json!({"hash_alg": "sha256", "pcr_values": [
            {"pcr_index": 0, "pcr_value": "11".repeat(32)},
            {"pcr_index": 9, "pcr_value": "22".repeat(32)}]})
    );
    assert_eq!(
        document["logs"],
        serde_json::json!([
            {"log_type": "boot_measurement", "log_data": BASE64.encode(b"boot events")},
            {"log_type": "runtime_measurement", "log_data": BASE64.encode(b"10 abc ima-ng sha256:00 /init")}])
    );
    // A PEM certificate is sent as text.
    std::fs::write(
        dir.join("iak.pem"),
        "-----BEGIN CERTIFICATE-----\nMAMBAgM=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let run = gpus(
        &["--gpus", "huawei", "--gpu-lib", &lib("huawei", "fake_dcmi")],
        &[("FAKE_DCMI_ATTEST_DIR", &dir_text), ("FAKE_DCMI_NPUS", "1")],
    );
    assert!(
        run.stdout.contains(
            r#""ak_cert":"-----BEGIN CERTIFICATE-----\nMAMBAgM=\n-----END CERTIFICATE-----\n""#
        ),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_npu_evidence_falls_back_to_inventory_with_the_reason() {
    let dir = attest_dir("bad");
    let dir_text = dir.display().to_string();
    std::fs::write(dir.join("iak.der"), [0x30, 0x00]).unwrap();
    std::fs::write(dir.join("quote.bin"), b"q").unwrap();
    std::fs::write(dir.join("signature.bin"), b"s").unwrap();
    // 35 bytes: not whole (index, SHA-256) pairs.
    std::fs::write(dir.join("pcrs.bin"), [0u8; 35]).unwrap();
    let args = ["--gpus", "huawei", "--gpu-lib", &lib("huawei", "fake_dcmi")];
    let run = gpus(
        &args,
        &[("FAKE_DCMI_ATTEST_DIR", &dir_text), ("FAKE_DCMI_NPUS", "1")],
    );
    assert!(run.output.status.success());
    assert!(run.devices("huawei")[0].contains("kind=host-reported format=dcmi-inventory"));
    assert!(run.stdout.contains(
        "note: DCMI: NPU 0/0 attestation: evidence: PCR record of 35 bytes is not whole (index, SHA-256) pairs"
    ), "{}", run.stdout);
    // A length past the buffer is refused, not read.
    std::fs::write(dir.join("pcrs.bin"), [0u8; 36]).unwrap();
    let run = gpus(
        &args,
        &[
            ("FAKE_DCMI_ATTEST_DIR", &dir_text),
            ("FAKE_DCMI_NPUS", "1"),
            ("FAKE_DCMI_EVIDENCE_OVERSIZED", "1"),
        ],
    );
    assert!(run.devices("huawei")[0].contains("kind=host-reported"));
    assert!(run.stdout.contains(
        "note: DCMI: NPU 0/0 attestation: evidence: DCMI reports 4198400 bytes in a 4194304-byte buffer"
    ), "{}", run.stdout);
    // Missing quote file: the library call fails; inventory, with the code.
    std::fs::remove_file(dir.join("quote.bin")).unwrap();
    let run = gpus(
        &args,
        &[("FAKE_DCMI_ATTEST_DIR", &dir_text), ("FAKE_DCMI_NPUS", "1")],
    );
    assert!(
        run.stdout
            .contains("note: DCMI: NPU 0/0 attestation: dcmiv2_get_attest_evidence returned -8008")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_library_that_fails_to_start_is_a_note() {
    let run = run_all(&[("FAKE_AMDSMI_INIT_FAIL", "1"), ("FAKE_BRML_INIT_FAIL", "1")]);
    assert!(run.output.status.success());
    assert!(run.devices("amd").is_empty() && run.devices("biren").is_empty());
    assert_eq!(run.devices("huawei").len(), 8);
    let notes = run.notes();
    for expected in [
        "note: no AMD GPU: amdsmi_init: AMDSMI_STATUS_INIT_ERROR - Initialization error (status 18)",
        "note: no Biren GPU: brmlInit: Unknown Error (code 255)",
    ] {
        assert!(
            notes.contains(&expected),
            "missing {expected:?} in {notes:#?}"
        );
    }
}
