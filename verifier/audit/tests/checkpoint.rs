//! C2SP signed-note checkpoints: format, key hashes, signatures, parse errors.

use vigil_audit::note::{self, AuditPublicKey, CheckpointError, KeyError};
use vigil_audit::{b64, parse_checkpoint, verify_checkpoint};

const ORIGIN: &str = "vigil.example/audit";

fn signed(size: u64) -> (vigil_audit::AuditSigningKey, String) {
    let key = vigil_audit::load_key(ORIGIN, &vigil_audit::generate_key().unwrap()).unwrap();
    let cp = note::sign_checkpoint(&key, ORIGIN, size, &[0xab; 32], 1_700_000_000).unwrap();
    (key, cp.note)
}

#[test]
fn note_layout_follows_c2sp() {
    let (key, text) = signed(42);
    let root = b64::encode(&[0xab; 32]);
    let body = format!("{ORIGIN}\n42\n{root}\ntime 1700000000\n");
    assert!(
        text.starts_with(&format!("{body}\n\u{2014} {ORIGIN} ")),
        "{text}"
    );
    let sig_line = text.lines().last().unwrap();
    let raw = b64::decode(sig_line.rsplit(' ').next().unwrap()).unwrap();
    assert_eq!(raw.len(), 4 + 64);
    let pk = key.public_key();
    assert_eq!(raw[..4], pk.key_hash());
    // Key hash = SHA-256(name || "\n" || 0x01 || key)[..4].
    let mut msg = ORIGIN.as_bytes().to_vec();
    msg.push(b'\n');
    msg.push(1);
    msg.extend_from_slice(&pk.key);
    assert_eq!(
        raw[..4],
        ring::digest::digest(&ring::digest::SHA256, &msg).as_ref()[..4]
    );
    // The signature covers exactly the body including its final newline.
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &pk.key)
        .verify(body.as_bytes(), &raw[4..])
        .unwrap();

    let cp = verify_checkpoint(&text, &[pk]).unwrap();
    assert_eq!(
        (cp.origin.as_str(), cp.tree_size, cp.root_hash, cp.time),
        (ORIGIN, 42, [0xab; 32], 1_700_000_000)
    );
}

/// The Go checksum database's published verifier key: checks our key-hash
/// computation and verifier-key parsing against a real-world value.
#[test]
fn parses_sum_golang_org_verifier_key() {
    let vkey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
    let key = AuditPublicKey::from_verifier_key(vkey).unwrap();
    assert_eq!(key.name, "sum.golang.org");
    assert_eq!(hex::encode(key.key_hash()), "033de0ae");
    assert_eq!(key.to_verifier_key(), vkey);
    let wrong_hash = vkey.replace("033de0ae", "033de0af");
    assert!(matches!(
        AuditPublicKey::from_verifier_key(&wrong_hash),
        Err(KeyError::VerifierKey(_))
    ));
    assert!(AuditPublicKey::from_verifier_key("sum.golang.org+033de0ae").is_err());
}

#[test]
fn wrong_key_fails_and_unknown_signers_are_ignored() {
    let (key, text) = signed(7);
    let (other, _) = signed(7);
    assert_eq!(
        verify_checkpoint(&text, &[other.public_key()]),
        Err(CheckpointError::NoTrustedSignature)
    );
    // Same name and key hash but a different signature: rejected, not skipped.
    let (_, forged) = signed(7);
    let forged_sig = forged.lines().last().unwrap();
    let mut tampered = text.lines().take(5).collect::<Vec<_>>().join("\n");
    tampered.push('\n');
    let line = format!("{}\n", forged_sig);
    let raw = b64::decode(line.trim_end().rsplit(' ').next().unwrap()).unwrap();
    let mut spliced = key.public_key().key_hash().to_vec();
    spliced.extend_from_slice(&raw[4..]);
    tampered.push_str(&format!("\u{2014} {ORIGIN} {}\n", b64::encode(&spliced)));
    assert!(matches!(
        verify_checkpoint(&tampered, &[key.public_key()]),
        Err(CheckpointError::BadSignature { .. })
    ));
    // An extra line from an unknown key does not matter.
    let with_witness = format!(
        "{text}\u{2014} witness.example {}\n",
        b64::encode(&[9u8; 68])
    );
    verify_checkpoint(&with_witness, &[key.public_key()]).unwrap();
    // Changed body: signature fails.
    let changed = text.replacen("\n7\n", "\n8\n", 1);
    assert!(matches!(
        verify_checkpoint(&changed, &[key.public_key()]),
        Err(CheckpointError::BadSignature { .. })
    ));
}

fn body_error(text: &str) -> (usize, &'static str) {
    match parse_checkpoint(text) {
        Err(CheckpointError::Body { line, field, .. }) => (line, field),
        other => panic!("expected a body error, got {other:?}"),
    }
}

#[test]
fn parse_errors_name_the_line_and_field() {
    let (_, text) = signed(3);
    let root = b64::encode(&[0xab; 32]);
    let sig = text.split("\n\n").nth(1).unwrap();
    let with_body = |body: &str| format!("{body}\n{sig}");

    assert_eq!(
        parse_checkpoint("origin\n1\n"),
        Err(CheckpointError::NoSignatureBlock)
    );
    assert_eq!(
        body_error(&with_body(&format!("\n1\n{root}\n"))),
        (1, "origin")
    );
    assert_eq!(
        body_error(&with_body(&format!("o\n01\n{root}\n"))),
        (2, "tree size")
    );
    assert_eq!(
        body_error(&with_body(&format!("o\n-1\n{root}\n"))),
        (2, "tree size")
    );
    assert_eq!(
        body_error(&with_body(&format!("o\n99999999999999999999\n{root}\n"))),
        (2, "tree size")
    );
    assert_eq!(body_error(&with_body("o\n1\n")), (3, "root hash"));
    assert_eq!(
        body_error(&with_body("o\n1\nnot base64!\n")),
        (3, "root hash")
    );
    assert_eq!(
        body_error(&with_body(&format!("o\n1\n{}\n", b64::encode(&[1; 31])))),
        (3, "root hash")
    );
    assert_eq!(
        body_error(&with_body(&format!("o\n1\n{root}\ntime x\n"))),
        (4, "time")
    );
    assert_eq!(
        body_error(&with_body(&format!("o\n1\n{root}\ntime 1\ntime 2\n"))),
        (5, "time")
    );
    let parsed =
        parse_checkpoint(&with_body(&format!("o\n1\n{root}\nother ext\ntime -5\n"))).unwrap();
    assert_eq!(
        (parsed.time, parsed.extensions),
        (Some(-5), vec!["other ext".to_owned()])
    );

    let body = format!("o\n1\n{root}\n\n");
    let sig_err = |sigs: &str| match parse_checkpoint(&format!("{body}{sigs}")) {
        Err(CheckpointError::SignatureLine { line, .. }) => line,
        other => panic!("expected a signature line error, got {other:?}"),
    };
    let good = format!("\u{2014} k {}\n", b64::encode(&[1u8; 68]));
    assert_eq!(sig_err(""), 1);
    assert_eq!(sig_err(good.trim_end()), 1);
    assert_eq!(
        sig_err(&format!("{good}-- k {}\n", b64::encode(&[1u8; 68]))),
        2
    );
    assert_eq!(
        sig_err(&format!("\u{2014} k+x {}\n", b64::encode(&[1u8; 68]))),
        1
    );
    assert_eq!(
        sig_err(&format!("\u{2014} k {}\n", b64::encode(&[1u8; 4]))),
        1
    );
    assert_eq!(sig_err("\u{2014} k AAAA=\n"), 1);
    assert_eq!(sig_err("\u{2014} k\n"), 1);
    assert_eq!(
        parse_checkpoint(&format!("{body}{}", good.repeat(101))),
        Err(CheckpointError::TooManySignatures)
    );
    assert_eq!(
        parse_checkpoint(&format!("o\u{7}\n1\n{root}\n\n{good}")),
        Err(CheckpointError::ControlCharacter { offset: 1 })
    );
    assert!(matches!(
        parse_checkpoint(&"x".repeat(70_000)),
        Err(CheckpointError::TooLarge { .. })
    ));
    // Errors read well.
    let msg = parse_checkpoint(&with_body(&format!("o\n01\n{root}\n")))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("line 2") && msg.contains("tree size"), "{msg}");
}

#[test]
fn missing_time_line_is_refused_after_a_valid_signature() {
    let pkcs8 = vigil_audit::generate_key().unwrap();
    let key = vigil_audit::load_key(ORIGIN, &pkcs8).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
    // A standard C2SP checkpoint without Vigil's time extension.
    let body = format!("{ORIGIN}\n1\n{}\n", b64::encode(&[1; 32]));
    let mut sig = key.public_key().key_hash().to_vec();
    sig.extend_from_slice(pair.sign(body.as_bytes()).as_ref());
    let text = format!("{body}\n\u{2014} {ORIGIN} {}\n", b64::encode(&sig));
    assert_eq!(parse_checkpoint(&text).unwrap().time, None);
    assert_eq!(
        verify_checkpoint(&text, &[key.public_key()]),
        Err(CheckpointError::MissingTime)
    );
    assert!(note::sign_checkpoint(&key, "bad\norigin", 1, &[1; 32], 5).is_err());
}

#[test]
fn keys_load_and_reject_bad_input() {
    let pkcs8 = vigil_audit::generate_key().unwrap();
    let a = vigil_audit::load_key("a", &pkcs8).unwrap();
    let b = vigil_audit::load_key("a", &pkcs8).unwrap();
    assert_eq!(
        a.public_key(),
        b.public_key(),
        "reloading the persisted key gives the same key"
    );
    assert!(matches!(
        vigil_audit::load_key("a", &pkcs8[..10]),
        Err(KeyError::Pkcs8(_))
    ));
    assert!(matches!(
        vigil_audit::load_key("has space", &pkcs8),
        Err(KeyError::Name(_))
    ));
    assert!(matches!(
        vigil_audit::load_key("a+b", &pkcs8),
        Err(KeyError::Name(_))
    ));
    assert!(matches!(
        vigil_audit::load_key("", &pkcs8),
        Err(KeyError::Name(_))
    ));
    let vkey = a.public_key().to_verifier_key();
    assert_eq!(
        AuditPublicKey::from_verifier_key(&vkey).unwrap(),
        a.public_key()
    );
}
