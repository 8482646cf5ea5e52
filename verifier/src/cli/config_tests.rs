//! Every setting of `vigil` can come from the environment and the configuration file, and
//! docs/configuration.md lists them all: checked against clap's own command tree so the list
//! cannot drift.

use clap::{ArgAction, CommandFactory};
use vigil_tls::settings::{Program, SECTIONS, env_names};

/// Switches that weaken security: flags only, never from the environment or the file.
const SECURITY_FLAGS: &[&str] = &["dev", "tofu", "allow-no-baseline"];

/// Options that belong to one invocation (its inputs, outputs, filters and labels), not to a
/// host's configuration: flags only.
const PER_INVOCATION: &[&str] = &[
    "address",
    "ak-pub",
    "at",
    "author",
    "bank",
    "ca-dir",
    "cert-chain",
    "challenge",
    "evidence",
    "force",
    "from",
    "group",
    "ignore",
    "index",
    "json",
    "jwks",
    "key",
    "kind",
    "limit",
    "message",
    "name",
    "node",
    "nonce",
    "out",
    "pcr10",
    "pcrs",
    "reason",
    "report",
    "san",
    "sig",
    "signature",
    "since",
    "status",
    "template-hash",
    "to",
    "version",
];

/// (command path, long name, env) of every named option of every command.
fn options(
    command: &clap::Command,
    path: &str,
    out: &mut Vec<(String, String, Option<String>, bool)>,
) {
    for arg in command.get_arguments() {
        if arg.is_positional() {
            continue;
        }
        let Some(long) = arg.get_long() else { continue };
        let is_switch = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        out.push((path.to_owned(), long.to_owned(), env, is_switch));
    }
    for sub in command.get_subcommands() {
        options(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

fn all_options() -> Vec<(String, String, Option<String>, bool)> {
    let mut out = Vec::new();
    options(&crate::Cli::command(), "vigil", &mut out);
    out
}

#[test]
fn every_setting_has_a_variable_and_a_key_and_security_switches_have_neither() {
    let known: Vec<&str> = env_names(Program::Vigil).collect();
    let mut used = Vec::new();
    let all = all_options();
    assert!(all.len() > 100, "the walk found only {} options", all.len());
    for (path, long, env, is_switch) in all {
        if long == "help" {
            continue;
        }
        if long == "config" {
            assert_eq!(env.as_deref(), Some("VIGIL_CONFIG"), "{path} --config");
            continue;
        }
        if SECURITY_FLAGS.contains(&long.as_str()) || PER_INVOCATION.contains(&long.as_str()) {
            assert_eq!(env, None, "{path} --{long} is flag-only but reads {env:?}");
            continue;
        }
        let env = env.unwrap_or_else(|| {
            panic!("{path} --{long} has no environment variable (or list it as per-invocation)")
        });
        assert!(
            !is_switch,
            "{path} --{long}: a switch must not come from {env}"
        );
        assert!(
            known.contains(&env.as_str()),
            "{path} --{long} reads {env}, which no key of the configuration file sets"
        );
        used.push(env);
    }
    for env in known {
        assert!(
            used.iter().any(|u| u == env),
            "no option of vigil reads {env}"
        );
    }
}

#[test]
fn the_configuration_document_lists_every_key_variable_and_exception() {
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
    let doc = std::fs::read_to_string(doc_path).expect("docs/configuration.md");
    for section in SECTIONS {
        assert!(
            doc.contains(&format!("`[{}]`", section.name)),
            "[{}]",
            section.name
        );
        for key in section.keys {
            let row = format!("| `{}` | `{}` |", key.name, key.env);
            assert!(
                doc.contains(&row),
                "docs/configuration.md lacks the row {row}"
            );
        }
    }
    for long in SECURITY_FLAGS.iter().chain(PER_INVOCATION) {
        assert!(
            doc.contains(&format!("`--{long}`")),
            "docs/configuration.md: --{long}"
        );
    }
    assert!(doc.contains("`VIGIL_CONFIG`"));
}
