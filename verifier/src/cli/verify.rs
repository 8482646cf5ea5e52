//! `vigil verify`: challenge one node's attester, in this process or through a verifier.

use clap::Args;
use vigil_proto::v1::AttestNodeRequest;
use vigil_proto::v1::verifier_client::VerifierClient;
use vigil_verifier::pull::{MAX_EVIDENCE_BYTES, attest_node, attest_registered_node};
use vigil_verifier::report::{AttestationReport, Verdict};

use super::store::{StoreArgs, open_verifier, verifier_channel};
use crate::{AnyError, runtime};

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// A registered node, attested at its registered address (looked up in --db, or by
    /// --verifier).
    #[arg(
        value_name = "NODE-NAME",
        required_unless_present = "address",
        conflicts_with = "address"
    )]
    name: Option<String>,
    /// Challenge the attester at this address directly (`host:port` or a URL), registered
    /// or not.
    #[arg(long, value_name = "HOST:PORT", alias = "node")]
    address: Option<String>,
    /// Ask this running verifier (`vigil serve`) instead of verifying in this process.
    #[arg(long, env = "VIGIL_VERIFIER")]
    verifier: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Role whose client certificate to present to `--verifier` (default: orchestrator).
    #[arg(long = "as", env = "VIGIL_ROLE", value_name = "ROLE")]
    as_role: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn verify(args: VerifyArgs) -> Result<Verdict, AnyError> {
    let report = runtime()?.block_on(async {
        match &args.verifier {
            Some(url) => {
                let mut client = VerifierClient::new(
                    verifier_channel(
                        url,
                        args.store.tls_dir.as_deref(),
                        args.as_role.as_deref(),
                        vigil_tls::Role::Orchestrator,
                    )
                    .await?,
                )
                .max_decoding_message_size(MAX_EVIDENCE_BYTES);
                let result = client
                    .attest_node(AttestNodeRequest {
                        address: args.address.clone().unwrap_or_default(),
                        node_id: args.name.clone().unwrap_or_default(),
                    })
                    .await
                    .map_err(|s| match s.code() {
                        // The message says what to do (give --address, ...).
                        tonic::Code::NotFound | tonic::Code::FailedPrecondition => {
                            s.message().to_owned()
                        }
                        code => format!("verifier refused AttestNode: {code}: {}", s.message()),
                    })?
                    .into_inner();
                Ok::<_, AnyError>(AttestationReport::from_proto(&result))
            }
            None => {
                let verifier = open_verifier(&args.store)?;
                match (&args.address, &args.name) {
                    (Some(address), _) => Ok(attest_node(verifier, address).await?),
                    (None, Some(name)) => Ok(attest_registered_node(verifier, name).await?),
                    (None, None) => {
                        Err("give a registered NODE-NAME or --address HOST:PORT".into())
                    }
                }
            }
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(report.verdict)
}
