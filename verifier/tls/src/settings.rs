//! The configuration file shared by `vigil` and `vigil-attester` (`docs/configuration.md`).
//!
//! The file is TOML with one section per program or command family. Every key names the
//! environment variable that the same setting is read from; loading the file sets those
//! variables that are not already set, before clap parses the command line, so the order is
//! flags > environment > file > built-in default. Security-weakening switches (`--dev`,
//! `--tofu`, `--allow-no-baseline`) have no key and no variable: they are flags only.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Names the file to read instead of the default one; empty: read none.
pub const CONFIG_ENV: &str = "VIGIL_CONFIG";
/// Read when neither `--config` nor `VIGIL_CONFIG` names a file, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/vigil/vigil.toml";
/// Largest configuration file read.
pub const MAX_CONFIG_FILE: u64 = 1024 * 1024;

/// The TOML type a key takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string (paths, addresses, names).
    Text,
    /// An integer (seconds, counts, days).
    Integer,
    /// An array of strings, handed on comma-separated (none may contain a comma).
    List,
}

/// One key of a section and the environment variable it sets.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub env: &'static str,
    pub kind: Kind,
}

/// One `[section]` of the file.
#[derive(Debug)]
pub struct Section {
    pub name: &'static str,
    /// The program that reads it.
    pub program: Program,
    pub keys: &'static [Key],
}

/// Which binary is loading the file: each applies only its own sections, but every section is
/// checked, so one file serves both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    Vigil,
    Attester,
}

const fn key(name: &'static str, env: &'static str, kind: Kind) -> Key {
    Key { name, env, kind }
}

use Kind::{Integer, List, Text};

/// Every section and key the file may hold.
pub const SECTIONS: &[Section] = &[
    Section {
        name: "vigil",
        program: Program::Vigil,
        keys: &[
            key("verifier", "VIGIL_VERIFIER", Text),
            key("tls_dir", "VIGIL_TLS_DIR", Text),
            key("as", "VIGIL_ROLE", Text),
            key("db", "VIGIL_DB", Text),
        ],
    },
    Section {
        name: "serve",
        program: Program::Vigil,
        keys: &[
            key("listen", "VIGIL_LISTEN", Text),
            key("poll_interval", "VIGIL_POLL_INTERVAL", Integer),
            key("poll_concurrency", "VIGIL_POLL_CONCURRENCY", Integer),
            key("webhook", "VIGIL_WEBHOOK", Text),
            key("log_format", "VIGIL_LOG_FORMAT", Text),
            key("metrics_listen", "VIGIL_METRICS_LISTEN", Text),
            key("web_listen", "VIGIL_WEB_LISTEN", Text),
            key("retain_evidence", "VIGIL_RETAIN_EVIDENCE", Integer),
            key("ek_roots", "VIGIL_EK_ROOTS", Text),
            key("ek_allow", "VIGIL_EK_ALLOW", List),
            key("rim_dir", "VIGIL_RIM_DIR", Text),
            key("gpu_roots", "VIGIL_GPU_ROOTS", Text),
            key("rim_roots", "VIGIL_RIM_ROOTS", Text),
            key("npu_ca_dir", "VIGIL_NPU_CA_DIR", Text),
            key("baseline_keys", "VIGIL_BASELINE_KEYS", Text),
            key("nonce_ttl", "VIGIL_NONCE_TTL", Integer),
            key("result_ttl", "VIGIL_RESULT_TTL", Integer),
            key("audit_key", "VIGIL_AUDIT_KEY", Text),
            key("replica_id", "VIGIL_REPLICA_ID", Text),
        ],
    },
    Section {
        name: "attester",
        program: Program::Attester,
        keys: &[
            key("listen", "VIGIL_ATTESTER_LISTEN", Text),
            key("tls_dir", "VIGIL_TLS_DIR", Text),
            key("tcti", "VIGIL_TCTI", Text),
            key("state_dir", "VIGIL_ATTESTER_STATE", Text),
            key("ak_alg", "VIGIL_ATTESTER_AK_ALG", Text),
            key("ek_alg", "VIGIL_ATTESTER_EK_ALG", Text),
            key("node_id", "VIGIL_ATTESTER_NODE_ID", Text),
            key("event_log", "VIGIL_ATTESTER_EVENT_LOG", Text),
            key("ima_log", "VIGIL_ATTESTER_IMA_LOG", Text),
            key("gpus", "VIGIL_ATTESTER_GPUS", Text),
            key("gpu_lib", "VIGIL_ATTESTER_GPU_LIB", List),
            key("push_to", "VIGIL_ATTESTER_PUSH_TO", Text),
            key("push_interval", "VIGIL_ATTESTER_PUSH_INTERVAL", Integer),
            key("log_format", "VIGIL_ATTESTER_LOG_FORMAT", Text),
            key("metrics_listen", "VIGIL_ATTESTER_METRICS_LISTEN", Text),
        ],
    },
];

/// The environment variables `program` reads settings from (every key of its sections).
pub fn env_names(program: Program) -> impl Iterator<Item = &'static str> {
    SECTIONS
        .iter()
        .filter(move |s| s.program == program)
        .flat_map(|s| s.keys.iter().map(|k| k.env))
}

/// A configuration file that cannot be used; the message names the file (and the section and
/// key where there is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The file to read: `--config PATH` / `--config=PATH` in `args` (before any `--`), else
/// `VIGIL_CONFIG` (empty: none), else the default path. The flag is `true` when the file was
/// named explicitly (then it must exist).
pub fn config_path(args: &[OsString], env: Option<OsString>) -> Option<(PathBuf, bool)> {
    let mut named = None;
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if text == "--config" {
            named = iter.next().cloned();
        } else if let Some(path) = text.strip_prefix("--config=") {
            named = Some(OsString::from(path));
        }
    }
    match named.or(env) {
        Some(path) if path.is_empty() => None,
        Some(path) => Some((PathBuf::from(path), true)),
        None => Some((PathBuf::from(DEFAULT_CONFIG_PATH), false)),
    }
}

/// Parses `text` (the contents of `origin`) and returns, for the sections of `program`, each
/// key's variable and value as it is handed to clap. Every section is checked: an unknown
/// section or key, or a value of the wrong type, is an error.
pub fn parse(
    text: &str,
    origin: &Path,
    program: Program,
) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let file = origin.display();
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError(format!("{file}: {}", e.to_string().trim_end()))
    })?;
    let mut out = Vec::new();
    for (name, value) in &table {
        let Some(section) = SECTIONS.iter().find(|s| s.name == name) else {
            let known: Vec<_> = SECTIONS.iter().map(|s| format!("[{}]", s.name)).collect();
            return Err(ConfigError(match value {
                toml::Value::Table(_) => format!(
                    "{file}: unknown section [{name}] (known: {})",
                    known.join(", ")
                ),
                _ => format!("{file}: unknown key `{name}` outside any section"),
            }));
        };
        let toml::Value::Table(entries) = value else {
            return Err(ConfigError(format!(
                "{file}: `{name}` must be a section ([{name}]), found a {}",
                value.type_str()
            )));
        };
        for (key_name, value) in entries {
            let Some(key) = section.keys.iter().find(|k| k.name == key_name) else {
                return Err(ConfigError(format!(
                    "{file}: [{name}] unknown key `{key_name}`"
                )));
            };
            let wrong = |expected: &str| {
                ConfigError(format!(
                    "{file}: [{name}] {key_name}: expected {expected}, found {}",
                    value.type_str()
                ))
            };
            let text = match (key.kind, value) {
                (Kind::Text, toml::Value::String(s)) => s.clone(),
                (Kind::Text, _) => return Err(wrong("a string")),
                (Kind::Integer, toml::Value::Integer(i)) => i.to_string(),
                (Kind::Integer, _) => return Err(wrong("an integer")),
                (Kind::List, toml::Value::Array(items)) => {
                    let mut parts = Vec::with_capacity(items.len());
                    for item in items {
                        match item {
                            toml::Value::String(s) if !s.contains(',') => parts.push(s.as_str()),
                            toml::Value::String(_) => {
                                return Err(ConfigError(format!(
                                    "{file}: [{name}] {key_name}: an entry contains a comma"
                                )));
                            }
                            _ => return Err(wrong("an array of strings")),
                        }
                    }
                    parts.join(",")
                }
                (Kind::List, _) => return Err(wrong("an array of strings")),
            };
            if section.program == program {
                out.push((key.env, text));
            }
        }
    }
    Ok(out)
}

/// Finds and reads the configuration file for `program` (see [`config_path`]; `args` is the
/// whole command line, program name first) and returns the variables to set: those of its
/// keys whose variable `is_set` says is not already in the environment. A missing default file
/// is no error; a missing named one is.
pub fn load(
    program: Program,
    args: &[OsString],
    is_set: impl Fn(&str) -> bool,
    config_env: Option<OsString>,
) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let Some((path, explicit)) = config_path(args, config_env) else {
        return Ok(Vec::new());
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ConfigError(format!("{}: {e}", path.display()))),
    };
    let mut text = String::new();
    file.take(MAX_CONFIG_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    if text.len() as u64 > MAX_CONFIG_FILE {
        return Err(ConfigError(format!(
            "{}: larger than {MAX_CONFIG_FILE} bytes",
            path.display()
        )));
    }
    let mut pairs = parse(&text, &path, program)?;
    pairs.retain(|(env, _)| !is_set(env));
    Ok(pairs)
}

/// [`load`] with the process's own command line and environment.
pub fn load_from_process(program: Program) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let args: Vec<OsString> = std::env::args_os().collect();
    load(
        program,
        &args,
        |name| std::env::var_os(name).is_some(),
        std::env::var_os(CONFIG_ENV),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    const FILE: &str = r#"
[vigil]
verifier = "https://v:7444"
db = "/var/lib/vigil/vigil.db"

[serve]
listen = "0.0.0.0:7444"
poll_interval = 30
ek_allow = ["aa", "bb"]

[attester]
listen = "0.0.0.0:7443"
push_interval = 10
"#;

    #[test]
    fn each_program_gets_its_own_sections() {
        let vigil = parse(FILE, Path::new("f.toml"), Program::Vigil).unwrap();
        assert!(vigil.contains(&("VIGIL_VERIFIER", "https://v:7444".into())));
        assert!(vigil.contains(&("VIGIL_LISTEN", "0.0.0.0:7444".into())));
        assert!(vigil.contains(&("VIGIL_POLL_INTERVAL", "30".into())));
        assert!(vigil.contains(&("VIGIL_EK_ALLOW", "aa,bb".into())));
        assert!(!vigil.iter().any(|(e, _)| e.starts_with("VIGIL_ATTESTER_")));
        let attester = parse(FILE, Path::new("f.toml"), Program::Attester).unwrap();
        assert_eq!(
            attester,
            vec![
                ("VIGIL_ATTESTER_LISTEN", "0.0.0.0:7443".into()),
                ("VIGIL_ATTESTER_PUSH_INTERVAL", "10".into())
            ]
        );
    }

    #[test]
    fn unknown_keys_and_sections_are_errors_naming_file_section_and_key() {
        let e = parse(
            "[serve]\nlisten = \"x\"\nlsiten = \"y\"\n",
            Path::new("/etc/v.toml"),
            Program::Vigil,
        )
        .unwrap_err();
        assert_eq!(e.0, "/etc/v.toml: [serve] unknown key `lsiten`");
        // Checked even in the other program's sections.
        let e = parse(
            "[attester]\ndev = true\n",
            Path::new("v.toml"),
            Program::Vigil,
        )
        .unwrap_err();
        assert_eq!(e.0, "v.toml: [attester] unknown key `dev`");
        let e = parse("[server]\n", Path::new("v.toml"), Program::Vigil).unwrap_err();
        assert!(e.0.starts_with("v.toml: unknown section [server]"), "{e}");
        let e = parse("db = \"x\"\n", Path::new("v.toml"), Program::Vigil).unwrap_err();
        assert!(e.0.contains("unknown key `db` outside any section"), "{e}");
    }

    #[test]
    fn security_switches_have_no_key() {
        for name in ["dev", "tofu", "allow_no_baseline"] {
            for section in SECTIONS {
                assert!(section.keys.iter().all(|k| k.name != name));
                let text = format!("[{}]\n{name} = true\n", section.name);
                let e = parse(&text, Path::new("v.toml"), Program::Vigil).unwrap_err();
                assert!(e.0.contains(&format!("unknown key `{name}`")), "{e}");
            }
        }
    }

    #[test]
    fn wrong_types_are_errors() {
        let e = parse(
            "[serve]\npoll_interval = \"30\"\n",
            Path::new("v.toml"),
            Program::Vigil,
        )
        .unwrap_err();
        assert_eq!(
            e.0,
            "v.toml: [serve] poll_interval: expected an integer, found string"
        );
        let e = parse("[vigil]\ndb = 3\n", Path::new("v.toml"), Program::Vigil).unwrap_err();
        assert_eq!(e.0, "v.toml: [vigil] db: expected a string, found integer");
        let e = parse(
            "[serve]\nek_allow = \"aa\"\n",
            Path::new("v.toml"),
            Program::Vigil,
        )
        .unwrap_err();
        assert!(e.0.contains("expected an array of strings"), "{e}");
        let e = parse(
            "[serve]\nek_allow = [\"a,b\"]\n",
            Path::new("v.toml"),
            Program::Vigil,
        )
        .unwrap_err();
        assert!(e.0.contains("comma"), "{e}");
        let e = parse("serve = 1\n", Path::new("v.toml"), Program::Vigil).unwrap_err();
        assert!(e.0.contains("must be a section"), "{e}");
        let e = parse("[serve\n", Path::new("v.toml"), Program::Vigil).unwrap_err();
        assert!(e.0.starts_with("v.toml: "), "{e}");
    }

    #[test]
    fn the_path_comes_from_the_flag_then_the_environment_then_the_default() {
        let p = |a: &[&str], env: Option<&str>| config_path(&args(a), env.map(OsString::from));
        assert_eq!(
            p(&["vigil", "serve"], None),
            Some((PathBuf::from(DEFAULT_CONFIG_PATH), false))
        );
        assert_eq!(p(&["vigil"], Some("e.toml")), Some(("e.toml".into(), true)));
        assert_eq!(
            p(&["vigil", "--config", "f.toml"], Some("e.toml")),
            Some(("f.toml".into(), true))
        );
        assert_eq!(
            p(&["vigil", "serve", "--config=g.toml"], None),
            Some(("g.toml".into(), true))
        );
        assert!(!p(&["vigil", "--", "--config", "f.toml"], None).unwrap().1);
        assert_eq!(p(&["vigil"], Some("")), None);
        assert_eq!(p(&["vigil", "--config", ""], Some("e.toml")), None);
    }

    #[test]
    fn layering_sets_only_unset_variables_and_a_named_file_must_exist() {
        let dir = std::env::temp_dir().join(format!("vigil-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vigil.toml");
        std::fs::write(&path, FILE).unwrap();
        let a = args(&["vigil", "serve", "--config", path.to_str().unwrap()]);
        let pairs = load(Program::Vigil, &a, |name| name == "VIGIL_LISTEN", None).unwrap();
        assert!(!pairs.iter().any(|(e, _)| *e == "VIGIL_LISTEN"));
        assert!(pairs.contains(&("VIGIL_DB", "/var/lib/vigil/vigil.db".into())));

        let missing = dir.join("absent.toml");
        let a = args(&["vigil", "--config", missing.to_str().unwrap()]);
        let e = load(Program::Vigil, &a, |_| false, None).unwrap_err();
        assert!(e.0.starts_with(missing.to_str().unwrap()), "{e}");
        let e = load(
            Program::Vigil,
            &args(&["vigil"]),
            |_| false,
            Some(missing.clone().into()),
        )
        .unwrap_err();
        assert!(e.0.starts_with(missing.to_str().unwrap()), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_variable_is_named_once_per_program() {
        for program in [Program::Vigil, Program::Attester] {
            let mut names: Vec<_> = env_names(program).collect();
            let all = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), all, "{program:?}");
            assert!(
                names
                    .iter()
                    .all(|n| n.starts_with("VIGIL_") && *n != CONFIG_ENV)
            );
        }
    }
}
