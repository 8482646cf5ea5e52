//! Real quotes from physical TPMs and cloud vTPMs (`$VIGIL_FIXTURES/expected/quotes.json`):
//! every quote with an AK verifies exactly as its upstream says, and every PCR digest
//! recomputes as stored. The files are read in place; they belong to other projects.

mod common;

use std::path::{Path, PathBuf};

use vigil_verifier::evidence::tpm::pcr_files::parse_json;
use vigil_verifier::evidence::tpm::quote::{QuoteExpectations, check_pcr_digest, verify_quote};
use vigil_verifier::evidence::tpm::structures::{
    decode_ak_public, decode_attest, decode_signature,
};

/// The signature and AK files that sit beside a quote, by each upstream's naming.
fn companions(attest: &Path) -> (Option<PathBuf>, Option<PathBuf>) {
    let dir = attest.parent().unwrap();
    let name = attest.file_name().unwrap().to_str().unwrap();
    let signature = if name.contains("tpms_attest") {
        dir.join(name.replace("tpms_attest", "tpmt_signature"))
    } else if name == "quote.quote.bin" {
        dir.join("quote.signature.bin")
    } else if name == "quote.out" {
        dir.join("quotesig.out")
    } else {
        dir.join("none")
    };
    let ak = ["ak.Public.bin", "ak_pub.tpmt_public.bin", "ak.pub"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists());
    (Some(signature).filter(|p| p.exists()), ak)
}

#[test]
fn every_real_quote_verifies_as_its_upstream_says() {
    let Some(root) = common::fixtures("expected/quotes.json") else {
        return;
    };
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("expected/quotes.json")).unwrap()).unwrap();
    let (mut signatures, mut digests, mut nonces) = (0, 0, 0);
    for entry in expected.as_array().unwrap() {
        let attest_path = root.join(entry["attest"].as_str().unwrap());
        let attest_bytes = std::fs::read(&attest_path).unwrap();
        let attest = decode_attest(&attest_bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", attest_path.display()));
        let quote = attest.quote.as_ref().expect("a quote");
        let (signature_path, ak_path) = companions(&attest_path);

        if let Some(valid) = entry["signature_valid"].as_bool() {
            let ak = decode_ak_public(&std::fs::read(ak_path.as_ref().unwrap()).unwrap()).unwrap();
            let signature_bytes = std::fs::read(signature_path.as_ref().unwrap()).unwrap();
            let outcome = verify_quote(
                &ak,
                &attest_bytes,
                &signature_bytes,
                QuoteExpectations {
                    qualifying_data: None,
                    pcrs: None,
                    allow_sha1_signatures: true,
                },
            );
            assert_eq!(
                outcome.is_ok(),
                valid,
                "{}: {outcome:?}",
                attest_path.display()
            );
            signatures += 1;
            // The same quote with one flipped message byte must not verify.
            let mut flipped = attest_bytes.clone();
            flipped[10] ^= 0x40;
            let tampered = verify_quote(
                &ak,
                &flipped,
                &signature_bytes,
                QuoteExpectations {
                    qualifying_data: None,
                    pcrs: None,
                    allow_sha1_signatures: true,
                },
            );
            assert!(
                tampered.is_err(),
                "{}: flipped byte verified",
                attest_path.display()
            );
            // Where the upstream kept the nonce, the qualifying data must match it, and
            // a foreign nonce must not.
            let nonce_path = attest_path.parent().unwrap().join("quote.nonce.bin");
            if valid && nonce_path.exists() {
                let mut nonce = std::fs::read(&nonce_path).unwrap();
                fn expect(nonce: &[u8]) -> QuoteExpectations<'_> {
                    QuoteExpectations {
                        qualifying_data: Some(nonce),
                        pcrs: None,
                        allow_sha1_signatures: true,
                    }
                }
                assert!(verify_quote(&ak, &attest_bytes, &signature_bytes, expect(&nonce)).is_ok());
                nonce.push(1); // any other value, even for an empty upstream nonce
                assert!(
                    verify_quote(&ak, &attest_bytes, &signature_bytes, expect(&nonce)).is_err()
                );
                nonces += 1;
            }
        }

        if let Some(matches) = entry["pcr_digest_matches"].as_bool() {
            let pcrs =
                parse_json(&std::fs::read(root.join(entry["pcrs"].as_str().unwrap())).unwrap())
                    .unwrap();
            // Upstreams store more PCRs than were quoted; offer exactly the quoted ones.
            let mut quoted = pcrs.clone();
            for (bank, values) in quoted.iter_mut() {
                values.retain(|index, _| {
                    quote
                        .selection
                        .iter()
                        .any(|s| s.bank == *bank && s.pcrs.contains(index))
                });
            }
            quoted.retain(|_, values| !values.is_empty());
            let hash = match signature_path.as_ref() {
                Some(path) => decode_signature(&std::fs::read(path).unwrap())
                    .unwrap()
                    .hash(),
                None => quote_hash_from_digest_len(quote.pcr_digest.len()),
            };
            let outcome = check_pcr_digest(&quote.selection, &quote.pcr_digest, hash, &quoted);
            assert_eq!(
                outcome.is_ok(),
                matches,
                "{}: {outcome:?}",
                attest_path.display()
            );
            digests += 1;
        }
    }
    eprintln!(
        "real quotes: {signatures} signatures verified as expected, {digests} PCR digests recomputed, {nonces} nonces matched"
    );
    assert!(
        signatures >= 7 && digests >= 20,
        "too few fixtures were checked"
    );
}

fn quote_hash_from_digest_len(len: usize) -> vigil_verifier::evidence::tpm::HashAlg {
    use vigil_verifier::evidence::tpm::HashAlg;
    match len {
        20 => HashAlg::Sha1,
        48 => HashAlg::Sha384,
        64 => HashAlg::Sha512,
        _ => HashAlg::Sha256,
    }
}
