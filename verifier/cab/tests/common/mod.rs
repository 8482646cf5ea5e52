//! Test helpers: a scratch directory, the `gcab` tool (skipped loudly when
//! absent, a failure under CI), and a minimal hand-written cabinet builder
//! for layouts gcab cannot produce (reserve fields, set flags, bad names).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use vigil_cab::cfdata_checksum;

pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vigil-cab-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn write(&self, rel: &str, data: &[u8]) {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tool_present(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// True when gcab can be used; prints a loud skip (or panics under CI).
pub fn gcab_available(test: &str) -> bool {
    if tool_present("gcab") {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: gcab is required under CI (apt-get install gcab)");
    }
    eprintln!("SKIPPED: {test}: gcab not found (apt-get install gcab)");
    false
}

/// Run `gcab -c [-z] out.cab files...` inside `dir` (names stay relative).
pub fn gcab_create(dir: &Path, compress: bool, files: &[&str]) -> Vec<u8> {
    let mut cmd = Command::new("gcab");
    cmd.current_dir(dir).arg("-c");
    if compress {
        cmd.arg("-z");
    }
    cmd.arg("out.cab").args(files);
    let status = cmd.status().unwrap();
    assert!(status.success(), "gcab failed: {status}");
    std::fs::read(dir.join("out.cab")).unwrap()
}

/// Deterministic pseudo-random bytes (xorshift), incompressible for deflate.
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// A self-signed DER certificate from openssl, or marker bytes without it.
pub fn der_cert(dir: &Path, cn: &str) -> Vec<u8> {
    let out = dir.join(format!("{cn}.der"));
    let key = dir.join(format!("{cn}.key"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-outform", "DER", "-subj"])
        .arg(format!("/CN={cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&out)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        std::fs::read(out).unwrap()
    } else {
        eprintln!("NOTE: openssl unavailable; using marker bytes for {cn}");
        format!("not really a certificate: {cn}").into_bytes()
    }
}

/// Options for the hand-written builder.
#[derive(Clone)]
pub struct Build {
    /// (cbCFHeader, cbCFFolder, cbCFData) reserve sizes, if any.
    pub reserve: Option<(u16, u8, u8)>,
    pub extra_flags: u16,
    pub type_compress: u16,
    pub checksums: bool,
    pub attribs: u16,
    pub block_size: usize,
}

impl Default for Build {
    fn default() -> Self {
        Build {
            reserve: None,
            extra_flags: 0,
            type_compress: 0,
            checksums: true,
            attribs: 0x20,
            block_size: 0x8000,
        }
    }
}

/// Build a one-folder, uncompressed cabinet of `files` (names as raw bytes).
pub fn build(files: &[(&[u8], &[u8])], opt: &Build) -> Vec<u8> {
    let (hdr_res, fold_res, data_res) = opt.reserve.unwrap_or((0, 0, 0));
    let mut flags = opt.extra_flags;
    let mut header_len = 36;
    if opt.reserve.is_some() {
        flags |= 0x0004;
        header_len += 4 + usize::from(hdr_res);
    }
    let folders_len = 8 + usize::from(fold_res);
    let files_offset = header_len + folders_len;
    let mut file_table = Vec::new();
    let mut folder_bytes = Vec::new();
    for (name, data) in files {
        file_table.extend_from_slice(&(data.len() as u32).to_le_bytes());
        file_table.extend_from_slice(&(folder_bytes.len() as u32).to_le_bytes());
        file_table.extend_from_slice(&0u16.to_le_bytes()); // iFolder
        file_table.extend_from_slice(&0x5b7du16.to_le_bytes()); // date
        file_table.extend_from_slice(&0x0b54u16.to_le_bytes()); // time
        file_table.extend_from_slice(&opt.attribs.to_le_bytes());
        file_table.extend_from_slice(name);
        file_table.push(0);
        folder_bytes.extend_from_slice(data);
    }
    let data_offset = files_offset + file_table.len();
    let mut blocks = Vec::new();
    let chunks: Vec<&[u8]> = folder_bytes.chunks(opt.block_size).collect();
    for chunk in &chunks {
        let len = chunk.len() as u16;
        let sum = if opt.checksums {
            cfdata_checksum(len, len, chunk)
        } else {
            0
        };
        blocks.extend_from_slice(&sum.to_le_bytes());
        blocks.extend_from_slice(&len.to_le_bytes());
        blocks.extend_from_slice(&len.to_le_bytes());
        blocks.extend(std::iter::repeat_n(0xEEu8, usize::from(data_res)));
        blocks.extend_from_slice(chunk);
    }
    let total = data_offset + blocks.len();

    let mut cab = Vec::new();
    cab.extend_from_slice(b"MSCF");
    cab.extend_from_slice(&0u32.to_le_bytes());
    cab.extend_from_slice(&(total as u32).to_le_bytes());
    cab.extend_from_slice(&0u32.to_le_bytes());
    cab.extend_from_slice(&(files_offset as u32).to_le_bytes());
    cab.extend_from_slice(&0u32.to_le_bytes());
    cab.extend_from_slice(&[3, 1]);
    cab.extend_from_slice(&1u16.to_le_bytes());
    cab.extend_from_slice(&(files.len() as u16).to_le_bytes());
    cab.extend_from_slice(&flags.to_le_bytes());
    cab.extend_from_slice(&0x1234u16.to_le_bytes());
    cab.extend_from_slice(&0u16.to_le_bytes());
    if opt.reserve.is_some() {
        cab.extend_from_slice(&hdr_res.to_le_bytes());
        cab.push(fold_res);
        cab.push(data_res);
        cab.extend(std::iter::repeat_n(0xAAu8, usize::from(hdr_res)));
    }
    cab.extend_from_slice(&(data_offset as u32).to_le_bytes());
    cab.extend_from_slice(&(chunks.len() as u16).to_le_bytes());
    cab.extend_from_slice(&opt.type_compress.to_le_bytes());
    cab.extend(std::iter::repeat_n(0xBBu8, usize::from(fold_res)));
    cab.extend_from_slice(&file_table);
    cab.extend_from_slice(&blocks);
    assert_eq!(cab.len(), total);
    cab
}

/// Offsets of the CFDATA blocks of folder 0 (reads the cabinet like the
/// library does, independently, for tamper tests).
pub fn cfdata_offsets(cab: &[u8]) -> Vec<usize> {
    let u16_at = |o: usize| u16::from_le_bytes([cab[o], cab[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([cab[o], cab[o + 1], cab[o + 2], cab[o + 3]]);
    let flags = u16_at(30);
    let (mut folder_at, mut data_res) = (36, 0);
    if flags & 4 != 0 {
        folder_at += 4 + usize::from(u16_at(36));
        data_res = usize::from(cab[39]);
    }
    let mut at = u32_at(folder_at) as usize;
    let count = u16_at(folder_at + 4);
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(at);
        at += 8 + data_res + usize::from(u16_at(at + 4));
    }
    out
}

/// A one-folder, one-file cabinet whose CFDATA blocks are given verbatim
/// as (payload, cbUncomp); checksums are computed.
pub fn build_blocks(name: &[u8], blocks: &[(Vec<u8>, u16)], type_compress: u16) -> Vec<u8> {
    let file_len: u32 = blocks.iter().map(|(_, u)| u32::from(*u)).sum();
    let mut file_entry = Vec::new();
    file_entry.extend_from_slice(&file_len.to_le_bytes());
    file_entry.extend_from_slice(&0u32.to_le_bytes());
    file_entry.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x20, 0]);
    file_entry.extend_from_slice(name);
    file_entry.push(0);
    let files_offset = 36 + 8;
    let data_offset = files_offset + file_entry.len();
    let mut data = Vec::new();
    for (payload, uncomp) in blocks {
        let len = payload.len() as u16;
        data.extend_from_slice(&cfdata_checksum(len, *uncomp, payload).to_le_bytes());
        data.extend_from_slice(&len.to_le_bytes());
        data.extend_from_slice(&uncomp.to_le_bytes());
        data.extend_from_slice(payload);
    }
    let total = data_offset + data.len();
    let mut cab = Vec::new();
    cab.extend_from_slice(b"MSCF");
    cab.extend_from_slice(&0u32.to_le_bytes());
    cab.extend_from_slice(&(total as u32).to_le_bytes());
    cab.extend_from_slice(&0u32.to_le_bytes());
    cab.extend_from_slice(&(files_offset as u32).to_le_bytes());
    cab.extend_from_slice(&0u32.to_le_bytes());
    cab.extend_from_slice(&[3, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    cab.extend_from_slice(&(data_offset as u32).to_le_bytes());
    cab.extend_from_slice(&(blocks.len() as u16).to_le_bytes());
    cab.extend_from_slice(&type_compress.to_le_bytes());
    cab.extend_from_slice(&file_entry);
    cab.extend_from_slice(&data);
    assert_eq!(cab.len(), total);
    cab
}
