//! `vigil eventlog …`: measured-boot event logs, offline.

use std::path::PathBuf;

use clap::Subcommand;
use vigil_verifier::report::Verdict;

use crate::AnyError;

#[derive(Subcommand)]
pub(crate) enum EventlogCommand {
    /// Print every event (like `tpm2_eventlog`).
    Show {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Typed boot claims (Secure Boot, boot apps, separators, ...), each with its provenance.
    Claims {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Replay the log per bank; with --pcrs, compare and exit 1 on a mismatch.
    Replay {
        file: PathBuf,
        /// PCR values: pcrs.json ({bank: {index: hex}}) or `tpm2_pcrread` output.
        #[arg(long)]
        pcrs: Option<PathBuf>,
        /// PCRs not to compare (e.g. 10, which IMA extends).
        #[arg(long, value_delimiter = ',')]
        ignore: Vec<u32>,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn read_event_log(
    path: &std::path::Path,
) -> Result<vigil_verifier::evidence::eventlog::EventLog, AnyError> {
    use vigil_verifier::evidence::eventlog::parse::MAX_LOG_BYTES;
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_LOG_BYTES as u64 {
        return Err(format!(
            "{}: {size} bytes exceeds the limit of {MAX_LOG_BYTES}",
            path.display()
        )
        .into());
    }
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(vigil_verifier::evidence::eventlog::parse(&data)
        .map_err(|e| format!("{}: {e}", path.display()))?)
}

pub(crate) fn eventlog_command(command: EventlogCommand) -> Result<Verdict, AnyError> {
    use vigil_verifier::evidence::eventlog::{compare, render, replay};
    match command {
        EventlogCommand::Show { file, json } => {
            let log = read_event_log(&file)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&render::view(&log))?);
            } else {
                print!("{}", render::render_text(&log));
            }
            Ok(Verdict::Pass)
        }
        EventlogCommand::Claims { file, json } => {
            use vigil_verifier::evidence::eventlog::{ClaimStatus, claims};
            let log = read_event_log(&file)?;
            let claims = claims(&log);
            if json {
                println!("{}", serde_json::to_string_pretty(&claims)?);
            } else {
                for c in &claims {
                    print!("{}", render_eventlog_claim(c)?);
                }
            }
            let failed = claims
                .iter()
                .any(|c| matches!(c.status, ClaimStatus::Failed(_)));
            Ok(if failed { Verdict::Fail } else { Verdict::Pass })
        }
        EventlogCommand::Replay {
            file,
            pcrs,
            ignore,
            json,
        } => {
            let log = read_event_log(&file)?;
            let replayed = replay(&log);
            let mismatches = match &pcrs {
                None => Vec::new(),
                Some(path) => {
                    let data =
                        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                    let expected = vigil_verifier::evidence::tpm::pcr_files::parse_pcr_file(
                        &data,
                        &Vec::new(),
                    )
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                    compare(&replayed, &expected, &ignore)
                }
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "replay": replayed,
                        "compared": pcrs.is_some(),
                        "mismatches": mismatches,
                    }))?
                );
            } else {
                print!("{}", replayed.render_text());
                if pcrs.is_some() {
                    if mismatches.is_empty() {
                        println!(
                            "MATCH: every compared PCR the log covers replays to the given value"
                        );
                    } else {
                        for m in &mismatches {
                            println!("MISMATCH {m}");
                        }
                    }
                }
            }
            Ok(if mismatches.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Fail
            })
        }
    }
}

/// One `vigil eventlog claims` entry: `name  value  [status; event N, PCR P]`. A list value
/// (dbx hashes, certificates) has one item per line under the claim instead of one long line.
pub(crate) fn render_eventlog_claim(
    c: &vigil_verifier::evidence::eventlog::Claim,
) -> Result<String, AnyError> {
    use vigil_verifier::evidence::eventlog::{ClaimStatus, ClaimValue};
    let status = match &c.status {
        ClaimStatus::Verified => "verified".to_owned(),
        ClaimStatus::Unverifiable(_) => "measured".to_owned(),
        ClaimStatus::Failed(why) => format!("FAILED: {why}"),
    };
    let origin = format!(
        "[{status}; event {}, PCR {}]",
        c.provenance.event, c.provenance.pcr
    );
    Ok(match &c.value {
        ClaimValue::List(items) => {
            let mut out = format!("{:<44} {} items  {origin}\n", c.name, items.len());
            for item in items {
                out.push_str(&format!("    {item}\n"));
            }
            out
        }
        value => {
            let value = serde_json::to_value(value)?;
            format!("{:<44} {}  {origin}\n", c.name, value["value"])
        }
    })
}

#[cfg(test)]
mod eventlog_claim_tests {
    use vigil_verifier::evidence::eventlog::{Claim, ClaimStatus, ClaimValue, claims::Provenance};

    #[test]
    fn a_list_claim_prints_one_item_per_line() {
        let hashes = vec!["aa".repeat(32), "bb".repeat(32), "cc".repeat(32)];
        let claim = Claim {
            name: "secureboot.dbx".into(),
            value: ClaimValue::List(hashes.clone()),
            status: ClaimStatus::Verified,
            provenance: Provenance {
                event: 7,
                pcr: 7,
                offset: 0,
            },
        };
        let text = super::render_eventlog_claim(&claim).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("secureboot.dbx"), "{text}");
        assert!(
            lines[0].ends_with("3 items  [verified; event 7, PCR 7]"),
            "{text}"
        );
        for (line, hash) in lines[1..].iter().zip(&hashes) {
            assert_eq!(line.trim(), hash);
        }
    }
}
