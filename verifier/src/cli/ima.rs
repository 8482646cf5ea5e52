//! `vigil ima show|replay`: an IMA measurement list read and replayed offline, as the verifier
//! does inside a host verdict.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use vigil_ima::{HashAlg, Quoted, ReplayState};
use vigil_verifier::report::Verdict;

use crate::AnyError;

#[derive(Clone, Copy, ValueEnum)]
pub enum Bank {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Bank {
    fn alg(self) -> HashAlg {
        match self {
            Bank::Sha1 => HashAlg::Sha1,
            Bank::Sha256 => HashAlg::Sha256,
            Bank::Sha384 => HashAlg::Sha384,
            Bank::Sha512 => HashAlg::Sha512,
        }
    }
}

#[derive(Subcommand)]
pub enum ImaCommand {
    /// Print every entry: PCR, template, what was measured (file or buffer), digest.
    Show {
        /// The list: binary (`binary_runtime_measurements`) or ASCII.
        list: PathBuf,
        /// Template hash of a binary list: sha1, or the bank of a per-bank list.
        #[arg(long, value_enum, default_value = "sha1")]
        template_hash: Bank,
        #[arg(long)]
        json: bool,
    },
    /// Replay the list into PCR 10 and compare with a quoted value: exit 0 when a prefix of
    /// the list reproduces it (the matched length is printed), 1 naming what broke the replay.
    Replay {
        list: PathBuf,
        /// The quoted PCR 10 value, hex.
        #[arg(long)]
        pcr10: String,
        /// The bank the value is from.
        #[arg(long, value_enum, default_value = "sha256")]
        bank: Bank,
        /// Template hash of a binary list: sha1, or the bank of a per-bank list.
        #[arg(long, value_enum, default_value = "sha1")]
        template_hash: Bank,
        #[arg(long)]
        json: bool,
    },
}

fn read_list(path: &PathBuf) -> Result<Vec<u8>, AnyError> {
    let limit = vigil_ima::list::MAX_LIST_BYTES;
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > limit as u64 {
        return Err(format!(
            "{}: {size} bytes is over the {limit}-byte limit",
            path.display()
        )
        .into());
    }
    Ok(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?)
}

pub fn ima_command(command: ImaCommand) -> Result<Verdict, AnyError> {
    match command {
        ImaCommand::Show {
            list,
            template_hash,
            json,
        } => show(&list, template_hash.alg(), json),
        ImaCommand::Replay {
            list,
            pcr10,
            bank,
            template_hash,
            json,
        } => replay(&list, &pcr10, bank.alg(), template_hash.alg(), json),
    }
}

fn show(path: &PathBuf, template_hash: HashAlg, json: bool) -> Result<Verdict, AnyError> {
    let data = read_list(path)?;
    let list = vigil_ima::parse(&data, template_hash, 0)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::with_capacity(list.entries.len());
    let mut undecodable = 0usize;
    for entry in &list.entries {
        let measured = vigil_ima::decode(entry);
        if measured.is_err() {
            undecodable += 1;
        }
        if json {
            rows.push(serde_json::json!({
                "entry": entry.index,
                "at": entry.location,
                "pcr": entry.pcr,
                "template_hash": hex::encode(&entry.template_hash),
                "violation": entry.is_violation(),
                "measurement": measured.as_ref().ok(),
                "error": measured.as_ref().err().map(ToString::to_string),
            }));
        } else {
            let what = match &measured {
                Ok(m) if entry.is_violation() => format!("{} VIOLATION", m.name),
                Ok(m) => format!("{} {}:{}", m.name, m.algorithm, hex::encode(&m.digest)),
                Err(e) => format!("UNREADABLE: {e}"),
            };
            println!(
                "{:>7}  {:>2}  {:<10}  {what}",
                entry.index, entry.pcr, entry.template
            );
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "format": list.format,
                "template_hash": list.template_hash,
                "entries": rows,
                "incomplete_tail": list.incomplete_tail,
            }))?
        );
    } else {
        println!(
            "{} entries ({:?}, template hash {}), {} violations{}{}",
            list.entries.len(),
            list.format,
            list.template_hash,
            list.entries.iter().filter(|e| e.is_violation()).count(),
            if undecodable > 0 {
                format!(", {undecodable} unreadable")
            } else {
                String::new()
            },
            list.incomplete_tail.map_or_else(String::new, |t| format!(
                "; an incomplete last entry ({} bytes at offset {}) was ignored",
                t.len, t.offset
            ))
        );
    }
    Ok(if undecodable == 0 {
        Verdict::Pass
    } else {
        Verdict::Fail
    })
}

fn replay(
    path: &PathBuf,
    pcr10: &str,
    bank: HashAlg,
    template_hash: HashAlg,
    json: bool,
) -> Result<Verdict, AnyError> {
    let value = hex::decode(pcr10.trim()).map_err(|e| format!("--pcr10: not hex: {e}"))?;
    if value.len() != bank.digest_len() {
        return Err(format!(
            "--pcr10: {} bytes, but a {bank} PCR holds {}",
            value.len(),
            bank.digest_len()
        )
        .into());
    }
    let data = read_list(path)?;
    let list = vigil_ima::parse(&data, template_hash, 0)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut quoted = Quoted::new();
    quoted.insert((bank, 10), value);
    let outcome = vigil_ima::replay(
        &list.entries,
        list.template_hash,
        &ReplayState::boot(),
        &quoted,
    );
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&match &outcome {
                Ok(r) => serde_json::json!({
                    "verified": true,
                    "entries": list.entries.len(),
                    "matched": r.matched,
                    "convention": r.state.tracks.first().map(|t| t.convention),
                }),
                Err(e) => serde_json::json!({
                    "verified": false,
                    "entries": list.entries.len(),
                    "error": e.to_string(),
                }),
            })?
        );
    } else {
        match &outcome {
            Ok(r) => {
                println!(
                    "PASS  the first {} of {} entries reproduce {bank}:10 = {pcr10}{}",
                    r.matched,
                    list.entries.len(),
                    r.state
                        .tracks
                        .first()
                        .map_or_else(String::new, |t| format!(" ({:?})", t.convention))
                );
                if r.matched < list.entries.len() {
                    println!(
                        "      {} later entries were measured after that value",
                        list.entries.len() - r.matched
                    );
                }
            }
            Err(e) => println!("FAIL  {e}"),
        }
    }
    Ok(if outcome.is_ok() {
        Verdict::Pass
    } else {
        Verdict::Fail
    })
}
