//! The verifier's result-signing key (ECDSA P-256) and its public JWK form.
//!
//! The key is generated once and kept as PKCS#8 on disk, so results signed before a restart
//! still verify against the published key set afterwards.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::claims::Ear;
use crate::error::EarError;
use crate::jws;

/// A PKCS#8 P-256 key is about 138 bytes; anything far larger is not our key file.
const MAX_KEY_FILE_LEN: u64 = 4096;
/// Uncompressed SEC1 point: 0x04 || x (32) || y (32).
const P256_POINT_LEN: usize = 65;
const P256_COORDINATE_LEN: usize = 32;

/// The verifier's result-signing key: ECDSA P-256, signing ES256 JWTs.
pub struct ResultSigningKey {
    key_pair: EcdsaKeyPair,
    rng: SystemRandom,
    jwk: Jwk,
}

impl std::fmt::Debug for ResultSigningKey {
    // Only the public half is ever printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultSigningKey")
            .field("kid", &self.jwk.kid)
            .finish_non_exhaustive()
    }
}

impl ResultSigningKey {
    /// Loads the PKCS#8 key at `path`, or generates one and stores it there (mode 0600,
    /// written to a temporary file and renamed, so a crash never leaves half a key).
    ///
    /// An existing file that is not a valid key is an error, never replaced: replacing it
    /// would silently invalidate every result already issued.
    pub fn load_or_generate(path: &Path) -> Result<Self, EarError> {
        let rng = SystemRandom::new();
        match read_key_file(path)? {
            Some(pkcs8) => Self::from_pkcs8(&pkcs8, rng, path),
            None => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| EarError::KeyGeneration)?;
                write_key_file_atomically(path, pkcs8.as_ref())?;
                Self::from_pkcs8(pkcs8.as_ref(), rng, path)
            }
        }
    }

    /// Builds the key from PKCS#8 bytes held in memory (`origin` only names it in errors).
    pub fn from_pkcs8_bytes(pkcs8: &[u8], origin: &Path) -> Result<Self, EarError> {
        Self::from_pkcs8(pkcs8, SystemRandom::new(), origin)
    }

    fn from_pkcs8(pkcs8: &[u8], rng: SystemRandom, path: &Path) -> Result<Self, EarError> {
        let key_pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(|e| {
                EarError::KeyRejected {
                    path: path.to_owned(),
                    reason: e.to_string(),
                }
            })?;
        let jwk = Jwk::from_p256_point(key_pair.public_key().as_ref()).ok_or_else(|| {
            EarError::KeyRejected {
                path: path.to_owned(),
                reason: "public key is not an uncompressed P-256 point".to_owned(),
            }
        })?;
        Ok(ResultSigningKey { key_pair, rng, jwk })
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url): the `kid` in every token header.
    pub fn key_id(&self) -> &str {
        &self.jwk.kid
    }

    /// The public key as a JWK, for the published key set.
    pub fn public_jwk(&self) -> Jwk {
        self.jwk.clone()
    }

    /// Signs the claims as a compact JWS with header `{"alg":"ES256","typ":"JWT","kid":..}`.
    pub fn sign(&self, ear: &Ear) -> Result<String, EarError> {
        jws::sign(ear, &self.jwk.kid, |message| {
            self.key_pair
                .sign(&self.rng, message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| EarError::Signing)
        })
    }
}

#[cfg(test)]
impl ResultSigningKey {
    /// Signs arbitrary bytes, so tests can build tokens the public API refuses to issue.
    pub(crate) fn sign_bytes_for_tests(&self, message: &[u8]) -> Vec<u8> {
        self.key_pair
            .sign(&self.rng, message)
            .map(|signature| signature.as_ref().to_vec())
            .unwrap_or_default()
    }
}

/// A public EC key in JWK form (RFC 7517/7518).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always "EC".
    pub kty: String,
    /// Always "P-256".
    pub crv: String,
    /// X coordinate, 32 bytes, base64url.
    pub x: String,
    /// Y coordinate, 32 bytes, base64url.
    pub y: String,
    /// Key id; for Vigil's own keys the RFC 7638 thumbprint.
    pub kid: String,
    /// Always "ES256".
    pub alg: String,
    /// Always "sig".
    #[serde(rename = "use")]
    pub key_use: String,
}

/// A JWK set, as published for relying parties.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwk {
    fn from_p256_point(point: &[u8]) -> Option<Jwk> {
        if point.len() != P256_POINT_LEN || point.first() != Some(&0x04) {
            return None;
        }
        let x = URL_SAFE_NO_PAD.encode(point.get(1..1 + P256_COORDINATE_LEN)?);
        let y = URL_SAFE_NO_PAD.encode(point.get(1 + P256_COORDINATE_LEN..)?);
        let kid = ec_thumbprint("P-256", &x, &y);
        Some(Jwk {
            kty: "EC".to_owned(),
            crv: "P-256".to_owned(),
            x,
            y,
            kid,
            alg: "ES256".to_owned(),
            key_use: "sig".to_owned(),
        })
    }

    /// RFC 7638 thumbprint of this key: SHA-256 over the required members
    /// (`crv`, `kty`, `x`, `y`, in that order, no whitespace), base64url.
    pub fn thumbprint(&self) -> String {
        ec_thumbprint(&self.crv, &self.x, &self.y)
    }

    /// The uncompressed SEC1 point, after checking this is an ES256 signing key.
    pub(crate) fn p256_point(&self) -> Result<Vec<u8>, EarError> {
        let unusable = |reason: String| EarError::UnsupportedKey {
            kid: self.kid.clone(),
            reason,
        };
        for (member, actual, expected) in [
            ("kty", &self.kty, "EC"),
            ("crv", &self.crv, "P-256"),
            ("alg", &self.alg, "ES256"),
            ("use", &self.key_use, "sig"),
        ] {
            if actual != expected {
                return Err(unusable(format!(
                    "{member} is {actual:?}, expected {expected:?}"
                )));
            }
        }
        let mut point = Vec::with_capacity(P256_POINT_LEN);
        point.push(0x04);
        for (member, text) in [("x", &self.x), ("y", &self.y)] {
            let coordinate = URL_SAFE_NO_PAD
                .decode(text.as_bytes())
                .map_err(|e| unusable(format!("{member} is not base64url: {e}")))?;
            if coordinate.len() != P256_COORDINATE_LEN {
                return Err(unusable(format!(
                    "{member} is {} bytes, expected {P256_COORDINATE_LEN}",
                    coordinate.len()
                )));
            }
            point.extend_from_slice(&coordinate);
        }
        Ok(point)
    }
}

fn ec_thumbprint(crv: &str, x: &str, y: &str) -> String {
    // serde_json quotes and escapes each member exactly as RFC 7638 requires.
    let canonical = format!(
        r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
        json_string(crv),
        json_string(x),
        json_string(y)
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

fn key_io(path: &Path) -> impl FnOnce(std::io::Error) -> EarError + '_ {
    move |source| EarError::KeyIo {
        path: path.to_owned(),
        source,
    }
}

/// `Ok(None)` when there is no file yet; the contents otherwise, bounded in size.
fn read_key_file(path: &Path) -> Result<Option<Vec<u8>>, EarError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(key_io(path)(e)),
    };
    let mut contents = Vec::new();
    let read = file
        .take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut contents)
        .map_err(key_io(path))?;
    if read as u64 > MAX_KEY_FILE_LEN {
        return Err(EarError::KeyFileTooLarge {
            path: path.to_owned(),
            len: read as u64,
            max: MAX_KEY_FILE_LEN,
        });
    }
    Ok(Some(contents))
}

fn write_key_file_atomically(path: &Path, pkcs8: &[u8]) -> Result<(), EarError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(key_io(parent))?;
    }
    let tmp = temporary_sibling(path);
    // A temporary file left by a crash is stale; `create_new` below then makes a fresh 0600 one.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = create_private(&tmp)?;
        file.write_all(pkcs8)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_parent_dir(path)
    })();
    if let Err(e) = result {
        // Best effort: a leftover temporary file holds a key nobody uses.
        let _ = fs::remove_file(&tmp);
        return Err(key_io(path)(e));
    }
    Ok(())
}

fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Makes the rename itself durable, so a power loss cannot bring back "no key" after
/// results were already signed with the new one.
#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => fs::File::open(parent)?.sync_all(),
        None => fs::File::open(".")?.sync_all(),
    }
}

#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}
