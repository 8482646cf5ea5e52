//! Layouts gcab cannot write: reserve fields, set flags, hostile names,
//! oversize counts, unsupported compression.

mod common;

use common::{Build, build, cfdata_offsets, noise};
use vigil_cab::{CabError, CabLimits, read_cabinet, read_cabinet_with_limits};

#[test]
fn reserve_fields_are_skipped() {
    let big = noise(70_000, 1);
    let files: [(&[u8], &[u8]); 2] = [(b"Intel\\a.cer", b"AAAA"), (b"big", &big)];
    let cab = build(
        &files,
        &Build {
            reserve: Some((20, 3, 5)),
            ..Default::default()
        },
    );
    let got = read_cabinet(&cab).unwrap();
    assert_eq!(got[0].name, "Intel/a.cer");
    assert_eq!(got[0].data, b"AAAA");
    assert_eq!(got[1].data, big);
}

#[test]
fn trailing_signature_after_cb_cabinet_is_ignored() {
    let files: [(&[u8], &[u8]); 1] = [(b"a.cer", b"data")];
    let mut cab = build(
        &files,
        &Build {
            reserve: Some((20, 0, 0)),
            ..Default::default()
        },
    );
    cab.extend_from_slice(b"PKCS#7 signature blob would be here");
    assert_eq!(read_cabinet(&cab).unwrap()[0].data, b"data");
}

#[test]
fn multi_cabinet_flags_are_refused() {
    let files: [(&[u8], &[u8]); 1] = [(b"a", b"x")];
    for flag in [0x0001u16, 0x0002, 0x0003] {
        let cab = build(
            &files,
            &Build {
                extra_flags: flag,
                ..Default::default()
            },
        );
        assert_eq!(
            read_cabinet(&cab),
            Err(CabError::MultiCabinet { flags: flag })
        );
    }
}

#[test]
fn quantum_and_lzx_are_unsupported_and_name_the_folder() {
    let files: [(&[u8], &[u8]); 1] = [(b"a", b"x")];
    for (tc, method) in [(0x0002u16, "Quantum"), (0x1503, "LZX"), (0x000F, "unknown")] {
        let cab = build(
            &files,
            &Build {
                type_compress: tc,
                ..Default::default()
            },
        );
        let err = read_cabinet(&cab).unwrap_err();
        assert_eq!(
            err,
            CabError::UnsupportedCompression {
                folder: 0,
                type_compress: tc,
                method
            }
        );
        assert!(err.to_string().contains("CFFOLDER #0"));
    }
}

#[test]
fn escaping_names_are_refused() {
    for name in [&b"..\\..\\evil"[..], b"/abs", b"C:\\x", b"a/../../b", b""] {
        let files: [(&[u8], &[u8]); 1] = [(name, b"x")];
        let cab = build(&files, &Build::default());
        assert!(
            matches!(
                read_cabinet(&cab),
                Err(CabError::BadFileName { file: 0, .. })
            ),
            "{name:?}"
        );
    }
}

#[test]
fn utf8_names_need_the_attribute() {
    let files: [(&[u8], &[u8]); 1] = [("Ünï.cer".as_bytes(), b"x")];
    let plain = build(&files, &Build::default());
    assert!(matches!(
        read_cabinet(&plain),
        Err(CabError::BadFileName { .. })
    ));
    let flagged = build(
        &files,
        &Build {
            attribs: 0xA0,
            ..Default::default()
        },
    );
    assert_eq!(read_cabinet(&flagged).unwrap()[0].name, "Ünï.cer");
}

#[test]
fn duplicate_names_are_refused() {
    let files: [(&[u8], &[u8]); 2] = [(b"V\\a", b"1"), (b"V/a", b"2")];
    let cab = build(&files, &Build::default());
    assert!(matches!(
        read_cabinet(&cab),
        Err(CabError::DuplicateFileName { file: 1, .. })
    ));
}

#[test]
fn zero_checksums_pass_unless_required() {
    let files: [(&[u8], &[u8]); 1] = [(b"a", b"payload")];
    let cab = build(
        &files,
        &Build {
            checksums: false,
            ..Default::default()
        },
    );
    assert_eq!(read_cabinet(&cab).unwrap()[0].data, b"payload");
    let strict = CabLimits {
        require_checksums: true,
        ..Default::default()
    };
    assert!(matches!(
        read_cabinet_with_limits(&cab, &strict),
        Err(CabError::MissingChecksum {
            folder: 0,
            block: 0,
            ..
        })
    ));
}

#[test]
fn checksum_covers_reserve_free_block_with_reserve_present() {
    let files: [(&[u8], &[u8]); 1] = [(b"a", b"0123456789")];
    let cab = build(
        &files,
        &Build {
            reserve: Some((0, 0, 4)),
            ..Default::default()
        },
    );
    read_cabinet(&cab).unwrap();
    let at = cfdata_offsets(&cab)[0];
    let mut bad = cab.clone();
    bad[at + 8 + 4 + 3] ^= 1; // payload byte after the 4 reserve bytes
    assert!(matches!(
        read_cabinet(&bad),
        Err(CabError::ChecksumMismatch { .. })
    ));
}

fn limits() -> CabLimits {
    CabLimits {
        max_cabinet_bytes: 4096,
        max_folders: 1,
        max_files: 2,
        max_file_bytes: 100,
        max_total_uncompressed: 150,
        require_checksums: false,
    }
}

#[test]
fn limits_are_enforced() {
    let hundred = [7u8; 100];
    let ok: [(&[u8], &[u8]); 1] = [(b"a", &hundred)];
    read_cabinet_with_limits(&build(&ok, &Build::default()), &limits()).unwrap();

    let three: [(&[u8], &[u8]); 3] = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")];
    let err = read_cabinet_with_limits(&build(&three, &Build::default()), &limits());
    assert!(matches!(
        err,
        Err(CabError::LimitExceeded {
            what: "CFHEADER.cFiles",
            ..
        })
    ));

    let big = [7u8; 101];
    let one_big: [(&[u8], &[u8]); 1] = [(b"a", &big)];
    let err = read_cabinet_with_limits(&build(&one_big, &Build::default()), &limits());
    assert!(matches!(
        err,
        Err(CabError::LimitExceeded {
            what: "CFFILE.cbFile",
            ..
        })
    ));

    let two: [(&[u8], &[u8]); 2] = [(b"a", &hundred), (b"b", &hundred)];
    let err = read_cabinet_with_limits(&build(&two, &Build::default()), &limits());
    assert!(matches!(err, Err(CabError::LimitExceeded { .. })));

    let huge = vec![0u8; 5000];
    let too_long: [(&[u8], &[u8]); 1] = [(b"a", &huge)];
    let err = read_cabinet_with_limits(&build(&too_long, &Build::default()), &limits());
    assert!(matches!(err, Err(CabError::InputTooLarge { .. })));
}

#[test]
fn overlapping_files_cannot_multiply_output() {
    // Many CFFILEs pointing at the same 100 bytes: the sum of cbFile counts.
    let hundred = [1u8; 100];
    let files: [(&[u8], &[u8]); 2] = [(b"a", &hundred), (b"b", b"")];
    let mut cab = build(&files, &Build::default());
    // Rewrite file b to alias file a's range.
    let files_at = u32::from_le_bytes(cab[16..20].try_into().unwrap()) as usize;
    let b_at = files_at + 16 + 2;
    cab[b_at..b_at + 4].copy_from_slice(&100u32.to_le_bytes());
    cab[b_at + 4..b_at + 8].copy_from_slice(&0u32.to_le_bytes());
    let err = read_cabinet_with_limits(&cab, &limits());
    assert!(matches!(
        err,
        Err(CabError::LimitExceeded {
            what: "sum of CFFILE.cbFile",
            ..
        })
    ));
}

#[test]
fn oversize_header_counts_are_truncation_not_panic() {
    let files: [(&[u8], &[u8]); 1] = [(b"a", b"x")];
    let cab = build(&files, &Build::default());
    let mut many_files = cab.clone();
    many_files[28..30].copy_from_slice(&9_999u16.to_le_bytes());
    assert!(matches!(
        read_cabinet(&many_files),
        Err(CabError::Truncated { .. })
    ));
    let mut over = cab.clone();
    over[28..30].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(matches!(
        read_cabinet(&over),
        Err(CabError::LimitExceeded { .. })
    ));
    let mut folders = cab.clone();
    folders[26..28].copy_from_slice(&1000u16.to_le_bytes());
    assert!(read_cabinet(&folders).is_err());
    let mut blocks = cab.clone();
    blocks[36 + 4..36 + 6].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(matches!(
        read_cabinet(&blocks),
        Err(CabError::Truncated { .. })
    ));
}

#[test]
fn file_range_outside_folder_is_refused() {
    let files: [(&[u8], &[u8]); 1] = [(b"a", b"12345")];
    let mut cab = build(&files, &Build::default());
    let files_at = u32::from_le_bytes(cab[16..20].try_into().unwrap()) as usize;
    cab[files_at..files_at + 4].copy_from_slice(&6u32.to_le_bytes());
    assert!(matches!(
        read_cabinet(&cab),
        Err(CabError::FileOutsideFolder { file: 0, .. })
    ));
}

#[test]
fn bad_signature_version_and_folder_index() {
    let files: [(&[u8], &[u8]); 1] = [(b"a", b"x")];
    let cab = build(&files, &Build::default());
    let mut sig = cab.clone();
    sig[0] = b'Z';
    assert!(matches!(
        read_cabinet(&sig),
        Err(CabError::BadSignature { .. })
    ));
    let mut ver = cab.clone();
    ver[25] = 2;
    assert_eq!(
        read_cabinet(&ver),
        Err(CabError::UnsupportedVersion { major: 2, minor: 3 })
    );
    let files_at = u32::from_le_bytes(cab[16..20].try_into().unwrap()) as usize;
    for ifolder in [1u16, 0xFFFD, 0xFFFF] {
        let mut bad = cab.clone();
        bad[files_at + 8..files_at + 10].copy_from_slice(&ifolder.to_le_bytes());
        assert!(
            matches!(
                read_cabinet(&bad),
                Err(CabError::BadField {
                    field: "iFolder",
                    ..
                })
            ),
            "{ifolder:#x}"
        );
    }
    let mut stored_mismatch = cab.clone();
    let at = cfdata_offsets(&cab)[0];
    stored_mismatch[at..at + 4].copy_from_slice(&[0; 4]);
    stored_mismatch[at + 6..at + 8].copy_from_slice(&2u16.to_le_bytes());
    assert!(matches!(
        read_cabinet(&stored_mismatch),
        Err(CabError::BadField {
            field: "cbData",
            ..
        })
    ));
}

#[test]
fn overlong_name_is_refused() {
    let name = vec![b'a'; 300];
    let files: [(&[u8], &[u8]); 1] = [(&name, b"x")];
    let cab = build(&files, &Build::default());
    assert!(matches!(
        read_cabinet(&cab),
        Err(CabError::BadField {
            field: "szName",
            ..
        })
    ));
}
