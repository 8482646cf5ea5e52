//! Round trips and tamper tests on cabinets written by GNOME's gcab.

mod common;

use common::{Scratch, cfdata_offsets, der_cert, gcab_available, gcab_create, noise};
use vigil_cab::{CabError, CabFile, read_cabinet};

/// (name, content) pairs written into a cabinet.
type Samples = Vec<(&'static str, Vec<u8>)>;

/// Files of varied shape; the big one is > 200 KiB (compressible text,
/// noise, then a repeat of the text), so MSZIP needs many blocks. gcab 1.5
/// compresses each block independently (no cross-block back-references);
/// tests/mszip_history.rs covers those with a hand-made block.
fn sample_files() -> Samples {
    let mut big = Vec::new();
    let line = b"TPM vendor root certificate index line\n";
    while big.len() < 90_000 {
        big.extend_from_slice(line);
        big.extend_from_slice(format!("{}\n", big.len() % 977).as_bytes());
    }
    big.extend_from_slice(&noise(70_001, 7));
    let head = big[..50_000].to_vec();
    big.extend_from_slice(&head);
    vec![
        ("small.txt", b"hello cabinet\n".to_vec()),
        ("empty.bin", Vec::new()),
        ("big.bin", big),
        ("odd.bin", noise(32_769, 3)),
        ("tail.txt", b"abc".to_vec()),
    ]
}

fn make(tag: &str, compress: bool) -> (Scratch, Vec<u8>, Samples) {
    let dir = Scratch::new(tag);
    let files = sample_files();
    for (name, data) in &files {
        dir.write(name, data);
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    let cab = gcab_create(&dir.0, compress, &names);
    (dir, cab, files)
}

fn assert_same(got: &[CabFile], want: &[(&str, Vec<u8>)]) {
    assert_eq!(got.len(), want.len());
    for (g, (name, data)) in got.iter().zip(want) {
        assert_eq!(g.name, *name);
        assert!(g.data == *data, "{name}: content differs");
    }
}

#[test]
fn uncompressed_round_trip() {
    if !gcab_available("uncompressed_round_trip") {
        return;
    }
    let (_dir, cab, files) = make("plain", false);
    assert_same(&read_cabinet(&cab).unwrap(), &files);
}

#[test]
fn mszip_round_trip_with_many_blocks() {
    if !gcab_available("mszip_round_trip_with_many_blocks") {
        return;
    }
    let (_dir, cab, files) = make("mszip", true);
    assert_eq!(
        u16::from_le_bytes([cab[42], cab[43]]) & 0xF,
        1,
        "gcab -z writes MSZIP"
    );
    let blocks = cfdata_offsets(&cab);
    assert!(
        blocks.len() >= 7,
        "expected many CFDATA blocks, got {}",
        blocks.len()
    );
    assert_same(&read_cabinet(&cab).unwrap(), &files);
}

#[test]
fn gcab_writes_checksums_that_match_our_algorithm() {
    if !gcab_available("gcab_writes_checksums_that_match_our_algorithm") {
        return;
    }
    for compress in [false, true] {
        let (_dir, cab, _) = make("csum", compress);
        for at in cfdata_offsets(&cab) {
            let stored = u32::from_le_bytes(cab[at..at + 4].try_into().unwrap());
            assert_ne!(stored, 0, "gcab left a zero checksum at {at}");
        }
        // Every block is checked (non-zero) and the parse succeeds, so our
        // checksum agrees with gcab's on full and odd-length blocks.
        let limits = vigil_cab::CabLimits {
            require_checksums: true,
            ..Default::default()
        };
        vigil_cab::read_cabinet_with_limits(&cab, &limits).unwrap();
    }
}

#[test]
fn trusted_tpm_layout_with_vendor_folders() {
    if !gcab_available("trusted_tpm_layout_with_vendor_folders") {
        return;
    }
    let dir = Scratch::new("tpm");
    let layout = [
        "Intel/RootCA/Intel_TPM_Root.cer",
        "Intel/IntermediateCA/Intel_TPM_Int.crt",
        "Infineon/RootCA/IFX_Root.cer",
        "STMicro/IntermediateCA/ST_Int.crt",
        "NationZ/RootCA/NZ_Root.cer",
    ];
    let mut want = Vec::new();
    for (i, path) in layout.iter().enumerate() {
        let data = der_cert(&dir.0, &format!("cert{i}"));
        dir.write(path, &data);
        want.push((*path, data));
    }
    let cab = gcab_create(&dir.0, true, &layout);
    let got = read_cabinet(&cab).unwrap();
    // gcab stores `\`-separated names; we hand back `/`.
    assert!(cab.windows(6).any(|w| w == b"Intel\\"));
    assert_same(&got, &want);
}

#[test]
fn flipped_byte_in_any_cfdata_block_is_detected() {
    if !gcab_available("flipped_byte_in_any_cfdata_block_is_detected") {
        return;
    }
    for compress in [false, true] {
        let (_dir, cab, _) = make("flip", compress);
        let blocks = cfdata_offsets(&cab);
        for (b, &at) in blocks.iter().enumerate() {
            let len = usize::from(u16::from_le_bytes([cab[at + 4], cab[at + 5]]));
            for pos in [at + 8, at + 8 + len / 2, at + 8 + len - 1] {
                let mut bad = cab.clone();
                bad[pos] ^= 0x01;
                match read_cabinet(&bad) {
                    Err(CabError::ChecksumMismatch { block, offset, .. }) => {
                        assert_eq!((block, offset), (b, at));
                    }
                    other => panic!("flip at {pos} (block {b}): {other:?}"),
                }
            }
        }
    }
}

#[test]
fn corrupt_mszip_with_checksum_removed_is_an_inflate_error() {
    if !gcab_available("corrupt_mszip_with_checksum_removed_is_an_inflate_error") {
        return;
    }
    let (_dir, cab, _) = make("nocsum", true);
    let at = cfdata_offsets(&cab)[0];
    let mut bad = cab.clone();
    bad[at..at + 4].copy_from_slice(&[0; 4]);
    // Without a checksum nothing protects the payload but deflate itself:
    // the "CK" signature and the stream structure.
    bad[at + 8] = b'X';
    assert!(matches!(
        read_cabinet(&bad),
        Err(CabError::Decompress { block: 0, .. })
    ));
    // Cut the stream short inside a consistent block: cbData shrunk, sum zero.
    let mut short = cab.clone();
    short[at..at + 4].copy_from_slice(&[0; 4]);
    short[at + 4..at + 6].copy_from_slice(&10u16.to_le_bytes());
    assert!(read_cabinet(&short).is_err());
}

#[test]
fn every_truncation_fails_cleanly() {
    if !gcab_available("every_truncation_fails_cleanly") {
        return;
    }
    let dir = Scratch::new("trunc");
    dir.write("a.txt", &b"certificate ".repeat(6000));
    dir.write("b.bin", &noise(5000, 11));
    dir.write("V/c.cer", b"xyz");
    for compress in [false, true] {
        let cab = gcab_create(&dir.0, compress, &["a.txt", "b.bin", "V/c.cer"]);
        read_cabinet(&cab).unwrap();
        for len in 0..cab.len() {
            let prefix = &cab[..len];
            assert!(read_cabinet(prefix).is_err(), "prefix {len} accepted");
            // Also claim the short length in cbCabinet, so the parse reaches
            // whatever structure the cut falls into.
            if len >= 12 {
                let mut patched = prefix.to_vec();
                patched[8..12].copy_from_slice(&(len as u32).to_le_bytes());
                assert!(
                    read_cabinet(&patched).is_err(),
                    "patched prefix {len} accepted"
                );
            }
        }
    }
}

#[test]
fn every_single_byte_flip_never_panics() {
    if !gcab_available("every_single_byte_flip_never_panics") {
        return;
    }
    let dir = Scratch::new("fuzz");
    dir.write("a.txt", &b"TPM ".repeat(3000));
    dir.write("b/c.cer", &noise(700, 5));
    let cab = gcab_create(&dir.0, true, &["a.txt", "b/c.cer"]);
    for pos in 0..cab.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut bad = cab.clone();
            bad[pos] ^= mask;
            let _ = read_cabinet(&bad);
        }
    }
}
