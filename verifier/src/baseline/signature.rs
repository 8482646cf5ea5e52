//! Detached Ed25519 signatures over baseline files, so a baseline can be reviewed and signed
//! by someone other than whoever uploads it. When trusted baseline-signing keys are
//! configured, an unsigned or wrongly signed baseline is refused on import.
//!
//! Formats (text, one item per line, `#` comments):
//! - trusted keys file: `ed25519 <64 hex digits of the public key> [label]`
//! - signature file (`FILE.sig`): the 64-byte signature over the file's exact bytes, as hex.

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use super::BaselineError;

/// One trusted baseline-signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub public_key: [u8; 32],
    pub label: String,
}

impl TrustedKey {
    /// Short, stable name for logs and the audit log: the first 8 bytes of the key, hex.
    pub fn key_id(&self) -> String {
        hex::encode(self.public_key.get(..8).unwrap_or_default())
    }
}

fn error(source_name: &str, message: String) -> BaselineError {
    BaselineError::Signature {
        source_name: source_name.to_owned(),
        message,
    }
}

/// Parses a trusted keys file.
pub fn parse_trusted_keys(source_name: &str, text: &str) -> Result<Vec<TrustedKey>, BaselineError> {
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some("ed25519"), Some(key)) = (parts.next(), parts.next()) else {
            return Err(error(
                source_name,
                format!(
                    "line {}: expected `ed25519 <hex public key> [label]`",
                    number + 1
                ),
            ));
        };
        let public_key = hex::decode(key)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| {
                error(
                    source_name,
                    format!(
                        "line {}: the public key must be 32 bytes of hex",
                        number + 1
                    ),
                )
            })?;
        keys.push(TrustedKey {
            public_key,
            label: parts.collect::<Vec<_>>().join(" "),
        });
    }
    if keys.is_empty() {
        return Err(error(
            source_name,
            "no keys in the trusted keys file".into(),
        ));
    }
    Ok(keys)
}

/// Checks `signature_hex` over `content` against the trusted keys; returns the key that
/// signed it.
pub fn verify_detached<'k>(
    source_name: &str,
    content: &[u8],
    signature_hex: &str,
    trusted: &'k [TrustedKey],
) -> Result<&'k TrustedKey, BaselineError> {
    let signature = hex::decode(signature_hex.trim())
        .ok()
        .filter(|s| s.len() == 64)
        .ok_or_else(|| error(source_name, "the signature must be 64 bytes of hex".into()))?;
    trusted
        .iter()
        .find(|key| {
            UnparsedPublicKey::new(&ED25519, key.public_key)
                .verify(content, &signature)
                .is_ok()
        })
        .ok_or_else(|| {
            error(
                source_name,
                format!(
                    "does not verify with any of the {} trusted baseline-signing key(s)",
                    trusted.len()
                ),
            )
        })
}

/// A new Ed25519 signing key (PKCS#8) and its trusted-keys line.
pub fn generate_signing_key() -> Result<(Vec<u8>, String), String> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| "key generation failed")?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| "key does not load")?;
    Ok((
        pkcs8.as_ref().to_vec(),
        format!("ed25519 {}", hex::encode(pair.public_key().as_ref())),
    ))
}

/// Signs `content` with a PKCS#8 Ed25519 key; the hex signature for `FILE.sig`.
pub fn sign_detached(pkcs8: &[u8], content: &[u8]) -> Result<String, String> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| "not an Ed25519 PKCS#8 key")?;
    Ok(hex::encode(pair.sign(content).as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_file_verifies_and_every_change_is_refused() {
        let (pkcs8, line) = generate_signing_key().unwrap();
        let trusted = parse_trusted_keys("keys", &format!("# ops\n{line} ops-team\n")).unwrap();
        assert_eq!(trusted[0].label, "ops-team");
        let content = b"format = 1\nname = \"x\"\n";
        let signature = sign_detached(&pkcs8, content).unwrap();
        assert!(verify_detached("b.toml", content, &signature, &trusted).is_ok());

        let mut changed = content.to_vec();
        changed[0] ^= 1;
        let err = verify_detached("b.toml", &changed, &signature, &trusted).unwrap_err();
        assert!(
            err.to_string()
                .contains("b.toml: signature: does not verify"),
            "{err}"
        );

        let (other, _) = generate_signing_key().unwrap();
        let foreign = sign_detached(&other, content).unwrap();
        assert!(verify_detached("b.toml", content, &foreign, &trusted).is_err());
        assert!(verify_detached("b.toml", content, "zz", &trusted).is_err());
    }

    #[test]
    fn malformed_key_files_say_which_line() {
        let err = parse_trusted_keys("keys", "\n\nrsa abc\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = parse_trusted_keys("keys", "ed25519 abcd\n").unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
        assert!(parse_trusted_keys("keys", "# nothing\n").is_err());
    }
}
