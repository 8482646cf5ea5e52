//! `vigil quote verify`: offline checks of TPM quotes.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use vigil_verifier::evidence::tpm::offline::{QuoteFiles, check_quote_files};
use vigil_verifier::report::Verdict;

use crate::AnyError;

#[derive(Subcommand)]
pub(crate) enum QuoteCommand {
    /// Check a quote in tpm2-tools' file formats, like `tpm2_checkquote`.
    Verify(QuoteVerifyArgs),
}

#[derive(Args)]
pub(crate) struct QuoteVerifyArgs {
    /// AK public key: TPM2B_PUBLIC (`tpm2_createak -u`, `tpm2_readpublic -f tss`) or PEM/DER SPKI.
    #[arg(long)]
    ak_pub: PathBuf,
    /// TPMS_ATTEST (`tpm2_quote -m`).
    #[arg(long)]
    message: PathBuf,
    /// TPMT_SIGNATURE (`tpm2_quote -s`).
    #[arg(long)]
    signature: PathBuf,
    /// PCR values (`tpm2_quote -o`, serialized or `-F values`), or JSON {bank: {index: hex}}.
    #[arg(long)]
    pcrs: Option<PathBuf>,
    /// Expected qualifying data, hex (`tpm2_quote -q`).
    #[arg(long)]
    nonce: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn quote_verify(args: QuoteVerifyArgs) -> Result<Verdict, AnyError> {
    let nonce = args
        .nonce
        .as_deref()
        .map(|text| hex::decode(text.trim().trim_start_matches("0x")))
        .transpose()
        .map_err(|e| format!("--nonce is not hex: {e}"))?;
    let files = QuoteFiles::read(
        &args.ak_pub,
        &args.message,
        &args.signature,
        args.pcrs.as_deref(),
    )?;
    let result = check_quote_files(&files, nonce.as_deref());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", result.render_text());
    }
    Ok(result.verdict)
}
