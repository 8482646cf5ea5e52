//! Credential activation against a real (software) TPM: the verifier's pure-Rust
//! MakeCredential must be something the TPM's ActivateCredential accepts, and only for the
//! AK it was made for.

use ring::rand::SystemRandom;
use vigil_e2e::*;
use vigil_proto::v1::attester_client::AttesterClient;
use vigil_proto::v1::{ActivateCredentialRequest, GetIdentityRequest};
use vigil_verifier::evidence::tpm::structures::decode_tpm2b_public;
use vigil_verifier::registration::credential::make_credential;

#[test]
fn the_tpm_recovers_a_secret_sealed_to_its_rsa_ek_only_for_its_own_ak() {
    activation_round_trip("rsa");
}

#[test]
fn the_tpm_recovers_a_secret_sealed_to_its_ecc_ek_only_for_its_own_ak() {
    activation_round_trip("ecc");
}

fn activation_round_trip(ek_alg: &str) {
    let tpm = Swtpm::start();
    let dir = TempDir::new("activate");
    let attester = start_attester(
        &tpm,
        &dir.join("attester"),
        "activation-node",
        &["--ek-alg", ek_alg],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = AttesterClient::connect(attester.url()).await.unwrap();
        let identity = client
            .get_identity(GetIdentityRequest {})
            .await
            .unwrap()
            .into_inner();
        let ek = decode_tpm2b_public(&identity.ek_public).unwrap();
        let expected_key = if ek_alg == "rsa" {
            "RSA-2048"
        } else {
            "ECC NIST P-256"
        };
        assert_eq!(ek.key.describe(), expected_key);
        let ak = decode_tpm2b_public(&identity.ak_public).unwrap();
        assert_eq!(ak.name.as_deref(), Some(identity.ak_name.as_slice()));

        let secret = b"vigil registration secret 0123";
        let credential =
            make_credential(&ek, &identity.ak_name, secret, &SystemRandom::new()).unwrap();
        let answer = client
            .activate_credential(ActivateCredentialRequest {
                credential_blob: credential.credential_blob,
                encrypted_secret: credential.encrypted_secret,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.secret, secret);

        // Sealed for another object's name: the TPM's integrity check refuses it.
        let mut other_name = identity.ak_name.clone();
        other_name[5] ^= 1;
        let credential = make_credential(&ek, &other_name, secret, &SystemRandom::new()).unwrap();
        let refused = client
            .activate_credential(ActivateCredentialRequest {
                credential_blob: credential.credential_blob,
                encrypted_secret: credential.encrypted_secret,
            })
            .await;
        assert!(
            refused.is_err(),
            "activation for a foreign AK name must fail"
        );
    });
}
