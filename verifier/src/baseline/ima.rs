//! IMA rules: which measured files (and buffers) a baseline allows, and which must have been
//! measured. Judged on `FileMeasurement` claims, never on list bytes; a file signature is
//! checked here with the baseline's keys because the keys are policy.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::rules::glob;
use crate::claims::FileMeasurement;

/// The allow-list of a baseline's `[ima]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImaPolicy {
    /// Path (or glob) → allowed digests, each `alg:hex` or bare hex.
    pub allow: BTreeMap<String, Vec<String>>,
    /// Globs of paths whose measurements are not judged (logs, caches, temporary files).
    pub exclude: Vec<String>,
    /// Regular expressions (Keylime's `excludes`), anchored at the start of the path.
    pub exclude_regex: Vec<String>,
    /// PEM public keys or certificates: a file whose IMA signature verifies with one of them
    /// is allowed wherever it is.
    pub keys: Vec<String>,
    /// `ima-buf` entries by name (a keyring, `kexec-cmdline`) → allowed buffer digests.
    pub keyrings: BTreeMap<String, Vec<String>>,
    #[serde(skip)]
    compiled: CompiledCell,
}

/// The policy's indexes, built once per policy (an allow-list has thousands of paths).
#[derive(Debug, Clone, Default)]
struct CompiledCell(Arc<OnceLock<Result<Compiled, String>>>);

impl PartialEq for CompiledCell {
    fn eq(&self, _: &Self) -> bool {
        true // derived from the policy's fields, which are compared
    }
}
impl Eq for CompiledCell {}

#[derive(Debug)]
struct Compiled {
    exact: HashMap<String, Vec<Digest>>,
    globs: Vec<(String, Vec<Digest>)>,
    exclude_exact: std::collections::HashSet<String>,
    exclude_globs: Vec<String>,
    exclude_regex: Vec<regex::Regex>,
    keys: Vec<vigil_ima::signature::VerificationKey>,
    keyrings: HashMap<String, Vec<Digest>>,
}

/// An allowed digest: with its algorithm, or any algorithm of the right length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Digest {
    algorithm: Option<String>,
    hex: String,
}

impl Digest {
    fn parse(text: &str) -> Result<Digest, String> {
        let text = text.trim().to_ascii_lowercase();
        let (algorithm, hex) = match text.rsplit_once(':') {
            Some((alg, hex)) => (Some(alg.to_owned()), hex.to_owned()),
            None => (None, text.clone()),
        };
        if hex.is_empty() || hex.len() % 2 != 0 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "{text:?} is not a digest (`sha256:<hex>` or `<hex>`)"
            ));
        }
        Ok(Digest { algorithm, hex })
    }

    fn allows(&self, m: &FileMeasurement) -> bool {
        self.hex == m.digest
            && self
                .algorithm
                .as_deref()
                .is_none_or(|alg| alg.eq_ignore_ascii_case(&m.algorithm))
    }
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

fn digests(field: &str, list: &[String]) -> Result<Vec<Digest>, String> {
    list.iter()
        .map(|d| Digest::parse(d).map_err(|e| format!("{field}: {e}")))
        .collect()
}

impl ImaPolicy {
    pub fn new(
        allow: BTreeMap<String, Vec<String>>,
        exclude: Vec<String>,
        exclude_regex: Vec<String>,
        keys: Vec<String>,
        keyrings: BTreeMap<String, Vec<String>>,
    ) -> Result<ImaPolicy, String> {
        let policy = ImaPolicy {
            allow,
            exclude,
            exclude_regex,
            keys,
            keyrings,
            compiled: CompiledCell::default(),
        };
        policy.compiled().map(|_| ())?;
        Ok(policy)
    }

    fn compiled(&self) -> Result<&Compiled, String> {
        self.compiled
            .0
            .get_or_init(|| self.compile())
            .as_ref()
            .map_err(Clone::clone)
    }

    fn compile(&self) -> Result<Compiled, String> {
        let mut exact = HashMap::new();
        let mut globs = Vec::new();
        for (path, list) in &self.allow {
            let list = digests(&format!("allow {path:?}"), list)?;
            if is_glob(path) {
                globs.push((path.clone(), list));
            } else {
                exact.insert(path.clone(), list);
            }
        }
        let (exclude_globs, exclude_exact): (Vec<String>, Vec<String>) =
            self.exclude.iter().cloned().partition(|p| is_glob(p));
        let exclude_regex = self
            .exclude_regex
            .iter()
            .map(|r| {
                regex::Regex::new(&format!("^(?:{r})"))
                    .map_err(|e| format!("exclude_regex {r:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut keys = Vec::new();
        for (index, pem) in self.keys.iter().enumerate() {
            let label = format!("keys[{index}]");
            keys.extend(
                vigil_ima::signature::parse_keys(&label, pem.as_bytes())
                    .map_err(|e| format!("{label}: {e}"))?,
            );
        }
        let keyrings = self
            .keyrings
            .iter()
            .map(|(name, list)| Ok((name.clone(), digests(&format!("keyrings {name:?}"), list)?)))
            .collect::<Result<HashMap<_, _>, String>>()?;
        Ok(Compiled {
            exact,
            globs,
            exclude_exact: exclude_exact.into_iter().collect(),
            exclude_globs,
            exclude_regex,
            keys,
            keyrings,
        })
    }

    /// Whether the measurement is allowed; `Err` says why not.
    pub fn judge(&self, m: &FileMeasurement) -> Result<(), String> {
        let policy = self.compiled()?;
        if m.path == "boot_aggregate" && m.template != "ima-buf" {
            return Ok(()); // judged against the quoted PCRs (ima.boot_aggregate), not here
        }
        if policy.exclude_exact.contains(&m.path)
            || policy.exclude_globs.iter().any(|g| glob(g, &m.path))
            || policy.exclude_regex.iter().any(|r| r.is_match(&m.path))
        {
            return Ok(());
        }
        if m.violation {
            return Err(format!(
                "{}: a violation (measured while open for writing, or opened for writing while in use): its content is unknown",
                m.path
            ));
        }
        if m.kind == "buffer"
            && let Some(allowed) = policy.keyrings.get(&m.path)
        {
            return if allowed.iter().any(|d| d.allows(m)) {
                Ok(())
            } else {
                Err(format!(
                    "buffer {} {}:{} is not an allowed one for that keyring",
                    m.path, m.algorithm, m.digest
                ))
            };
        }
        let mut listed: Vec<&Vec<Digest>> = policy.exact.get(&m.path).into_iter().collect();
        listed.extend(
            policy
                .globs
                .iter()
                .filter(|(g, _)| glob(g, &m.path))
                .map(|(_, d)| d),
        );
        if listed.iter().any(|list| list.iter().any(|d| d.allows(m))) {
            return Ok(());
        }
        let signature = match (&m.signature, policy.keys.is_empty()) {
            (Some(signature), false) => Some(verify_signature(m, signature, &policy.keys)),
            _ => None,
        };
        match (signature, listed.is_empty()) {
            (Some(Ok(())), _) => Ok(()),
            (Some(Err(why)), true) => Err(format!(
                "{} is not in the allow-list and its signature does not prove it: {why}",
                m.path
            )),
            (Some(Err(why)), false) => Err(format!(
                "{} has digest {}:{}, not an allowed one for that path, and its signature does not prove it: {why}",
                m.path, m.algorithm, m.digest
            )),
            (None, true) => Err(format!("{} is not in the allow-list", m.path)),
            (None, false) => Err(format!(
                "{} has digest {}:{}, not an allowed one for that path",
                m.path, m.algorithm, m.digest
            )),
        }
    }
}

fn verify_signature(
    m: &FileMeasurement,
    signature: &str,
    keys: &[vigil_ima::signature::VerificationKey],
) -> Result<(), String> {
    let measurement = vigil_ima::Measurement {
        template: m.template.clone(),
        kind: if m.kind == "buffer" {
            vigil_ima::Kind::Buffer
        } else {
            vigil_ima::Kind::File
        },
        name: m.path.clone(),
        algorithm: m.algorithm.clone(),
        digest_type: None,
        digest: hex::decode(&m.digest).map_err(|e| format!("digest: {e}"))?,
        signature: Some(hex::decode(signature).map_err(|e| format!("signature: {e}"))?),
        buffer: None,
    };
    vigil_ima::signature::verify(&measurement, keys)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// How a requirement says a measurement is of another file (appraisal lists only near misses).
pub const ANOTHER_FILE: &str = "is another file";

/// A file that must have been measured since boot, with one of these digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequiredFile {
    /// Path or glob (`/lib/modules/*/nvidia.ko*`).
    pub path: String,
    /// Allowed digests (`alg:hex` or hex); empty: any digest, only its presence counts.
    pub digests: Vec<String>,
}

impl RequiredFile {
    pub fn validate(&self) -> Result<(), String> {
        digests(&format!("require {:?}", self.path), &self.digests).map(|_| ())
    }

    /// Whether `m` satisfies the requirement; `Err` says why not (for the closest miss).
    pub fn judge(&self, m: &FileMeasurement) -> Result<(), String> {
        if !glob(&self.path, &m.path) {
            return Err(format!("{} {ANOTHER_FILE}", m.path));
        }
        if m.violation {
            return Err(format!("{}: a violation, content unknown", m.path));
        }
        let allowed = digests("require", &self.digests)?;
        if allowed.is_empty() || allowed.iter().any(|d| d.allows(m)) {
            Ok(())
        } else {
            Err(format!(
                "{} measured with {}:{}, not an allowed digest",
                m.path, m.algorithm, m.digest
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(path: &str, digest: &str) -> FileMeasurement {
        FileMeasurement {
            path: path.into(),
            kind: "file".into(),
            algorithm: "sha256".into(),
            digest: digest.into(),
            template: "ima-ng".into(),
            signature: None,
            violation: false,
        }
    }

    fn policy(allow: &[(&str, &[&str])], exclude: &[&str], regex: &[&str]) -> ImaPolicy {
        ImaPolicy::new(
            allow
                .iter()
                .map(|(p, d)| (p.to_string(), d.iter().map(|d| d.to_string()).collect()))
                .collect(),
            exclude.iter().map(|e| e.to_string()).collect(),
            regex.iter().map(|e| e.to_string()).collect(),
            Vec::new(),
            BTreeMap::from([(
                ".builtin_trusted_keys".to_owned(),
                vec!["sha256:bb".to_owned()],
            )]),
        )
        .unwrap()
    }

    #[test]
    fn files_are_allowed_by_exact_path_glob_exclude_or_regex_and_refused_otherwise() {
        let p = policy(
            &[
                ("/usr/bin/sh", &["sha256:aa", "cc"]),
                ("/usr/lib/modules/*/nvidia.ko", &["sha256:dd"]),
            ],
            &["/var/log/*"],
            &["/tmp/.*"],
        );
        assert_eq!(p.judge(&measured("/usr/bin/sh", "aa")), Ok(()));
        // A bare digest matches whatever the algorithm.
        assert_eq!(p.judge(&measured("/usr/bin/sh", "cc")), Ok(()));
        assert_eq!(
            p.judge(&measured("/usr/lib/modules/6.8/nvidia.ko", "dd")),
            Ok(())
        );
        assert_eq!(p.judge(&measured("/var/log/syslog", "00")), Ok(()));
        assert_eq!(p.judge(&measured("/tmp/x/y", "00")), Ok(()));
        assert_eq!(p.judge(&measured("boot_aggregate", "00")), Ok(()));
        let wrong = p.judge(&measured("/usr/bin/sh", "ee")).unwrap_err();
        assert!(
            wrong.contains("not an allowed one for that path"),
            "{wrong}"
        );
        let mut sha1 = measured("/usr/bin/sh", "aa");
        sha1.algorithm = "sha1".into();
        assert!(p.judge(&sha1).is_err(), "sha256:aa does not allow sha1:aa");
        let unknown = p.judge(&measured("/usr/bin/nc", "aa")).unwrap_err();
        assert!(unknown.contains("not in the allow-list"), "{unknown}");
        // The regex is anchored at the start of the path.
        assert!(p.judge(&measured("/home/tmp/x", "00")).is_err());
    }

    #[test]
    fn violations_and_buffers_are_judged_by_what_they_are() {
        let p = policy(&[("/etc/passwd", &["aa"])], &[], &[]);
        let mut violation = measured("/etc/passwd", "");
        violation.violation = true;
        assert!(p.judge(&violation).unwrap_err().contains("violation"));
        let mut key = measured(".builtin_trusted_keys", "bb");
        key.kind = "buffer".into();
        key.template = "ima-buf".into();
        assert_eq!(p.judge(&key), Ok(()));
        key.digest = "cc".into();
        assert!(p.judge(&key).unwrap_err().contains("keyring"));
        let mut cmdline = measured("kexec-cmdline", "00");
        cmdline.kind = "buffer".into();
        assert!(
            p.judge(&cmdline)
                .unwrap_err()
                .contains("not in the allow-list")
        );
    }

    #[test]
    fn malformed_digests_regexes_and_keys_are_refused_when_the_policy_is_made() {
        let digest = ImaPolicy::new(
            BTreeMap::from([("/a".to_owned(), vec!["sha256:xyz".to_owned()])]),
            vec![],
            vec![],
            vec![],
            BTreeMap::new(),
        );
        assert!(digest.unwrap_err().contains("/a"));
        let regex = ImaPolicy::new(
            BTreeMap::new(),
            vec![],
            vec!["(".into()],
            vec![],
            BTreeMap::new(),
        );
        assert!(regex.unwrap_err().contains("exclude_regex"));
        let key = ImaPolicy::new(
            BTreeMap::new(),
            vec![],
            vec![],
            vec!["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into()],
            BTreeMap::new(),
        );
        assert!(key.unwrap_err().contains("keys[0]"));
    }

    /// vigil-ima's test material: an RSA-2048 certificate and an openssl-made signature over
    /// a file digest (see verifier/ima/tests/data/make-keys.sh).
    fn ima_test_data(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("ima/tests/data")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn a_file_signed_by_a_configured_key_is_allowed_anywhere_and_other_signatures_are_not() {
        let digest = ima_test_data("file.sha256");
        let signature = ima_test_data("rsa2048-v2.sig");
        // The IMA xattr: type 3, version 2, sha256 (4), the key id, the size, the signature.
        let mut xattr = vec![3u8, 2, 4, 0x52, 0xc1, 0xca, 0x47];
        xattr.extend((signature.len() as u16).to_be_bytes());
        xattr.extend(&signature);
        let mut signed = measured("/opt/vendor/bin/tool", &hex::encode(&digest));
        signed.template = "ima-sig".into();
        signed.signature = Some(hex::encode(&xattr));
        let certificate = String::from_utf8(ima_test_data("rsa2048.crt.pem")).unwrap();
        let with_key = ImaPolicy::new(
            BTreeMap::new(),
            vec![],
            vec![],
            vec![certificate],
            BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(with_key.judge(&signed), Ok(()));
        // One flipped signature byte: refused, saying why.
        let mut forged = signed.clone();
        let mut bad = xattr.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        forged.signature = Some(hex::encode(&bad));
        let why = with_key.judge(&forged).unwrap_err();
        assert!(why.contains("signature does not prove it"), "{why}");
        // Another file's digest under the same signature: refused.
        let mut other = signed.clone();
        other.digest = "00".repeat(32);
        assert!(with_key.judge(&other).is_err());
        // Without configured keys a signature counts for nothing.
        let without = policy(&[], &[], &[]);
        assert!(
            without
                .judge(&signed)
                .unwrap_err()
                .contains("not in the allow-list")
        );
    }

    #[test]
    fn a_required_file_needs_its_path_and_an_allowed_digest() {
        let required = RequiredFile {
            path: "/lib/modules/*/nvidia.ko".into(),
            digests: vec!["sha256:aa".into()],
        };
        assert_eq!(
            required.judge(&measured("/lib/modules/6.8/nvidia.ko", "aa")),
            Ok(())
        );
        assert!(
            required
                .judge(&measured("/lib/modules/6.8/nvidia.ko", "bb"))
                .unwrap_err()
                .contains("not an allowed digest")
        );
        assert!(
            required
                .judge(&measured("/usr/bin/sh", "aa"))
                .unwrap_err()
                .ends_with(ANOTHER_FILE)
        );
        let any_digest = RequiredFile {
            path: "/usr/bin/vigil-attester".into(),
            digests: vec![],
        };
        assert_eq!(
            any_digest.judge(&measured("/usr/bin/vigil-attester", "00")),
            Ok(())
        );
    }
}
