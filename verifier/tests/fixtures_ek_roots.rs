//! TPM vendor CA collections from the fixtures (`tpm-ca-certificates`, `keylime/tpm_cert_store`),
//! read in place: every intermediate whose issuer is in the collection chains to a vendor
//! root, and a tampered certificate does not.

mod common;

use vigil_verifier::registration::trust::{TrustError, TrustStore, certificates_in};
use x509_parser::prelude::*;

fn midpoint(der: &[u8]) -> i64 {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let v = cert.validity();
    (v.not_before.timestamp() + v.not_after.timestamp()) / 2
}

#[test]
fn vendor_intermediates_chain_to_vendor_roots_and_tampering_fails() {
    let Some(root) = common::fixtures("tpm-ca-certificates") else {
        return;
    };
    for collection in ["tpm-ca-certificates", "keylime/tpm_cert_store"] {
        let dir = root.join(collection);
        let store = TrustStore::load_dir(&dir).unwrap();
        let mut certs = Vec::new();
        let mut pending = vec![dir.clone()];
        while let Some(path) = pending.pop() {
            if path.is_dir() {
                pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("pem" | "cer" | "crt" | "der")
            ) {
                certs.extend(certificates_in(&std::fs::read(&path).unwrap()));
            }
        }
        let (mut chained, mut no_issuer, mut unsupported, mut expired) = (0, 0, 0, 0);
        let mut tampered_checked = 0;
        for der in &certs {
            let (_, cert) = X509Certificate::from_der(der).unwrap();
            if cert.subject() == cert.issuer() {
                continue;
            }
            let (rest, _) = X509Certificate::from_der(der).unwrap();
            let der = &der[..der.len() - rest.len()].to_vec();
            match store.validate(der, midpoint(der)) {
                Ok(chain) => {
                    assert!(chain.len() >= 2);
                    chained += 1;
                    // The same certificate with one flipped signature byte must not chain.
                    let (rest, _) = X509Certificate::from_der(der).unwrap();
                    let mut tampered = der[..der.len() - rest.len()].to_vec();
                    let last = tampered.len() - 1;
                    tampered[last] ^= 0x01;
                    let error = store.validate(&tampered, midpoint(der)).unwrap_err();
                    assert!(
                        matches!(
                            error,
                            TrustError::BadSignature { .. } | TrustError::Parse(_)
                        ),
                        "{}: tampered copy gave {error}",
                        cert.subject()
                    );
                    tampered_checked += 1;
                }
                Err(TrustError::NoIssuer { .. }) => no_issuer += 1,
                Err(TrustError::UnsupportedAlgorithm { .. }) => unsupported += 1,
                // Intermediates outliving their root: the midpoint falls after the root expired.
                Err(TrustError::Expired { .. }) => expired += 1,
                Err(e) => panic!("{collection}: {}: {e}", cert.subject()),
            }
        }
        eprintln!(
            "{collection}: {} anchors, {} intermediates; {chained} chain to a root ({tampered_checked} tampered copies refused), \
             {no_issuer} have no issuer in the collection, {unsupported} use P-521/unsupported signatures, {expired} outlive their root",
            store.anchor_count(),
            store.intermediate_count(),
        );
        assert!(chained > 0, "{collection}: nothing chained");
    }
}
