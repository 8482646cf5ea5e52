//! `vigil node register|status|remove`.

use clap::{Args, Subcommand};
use vigil_verifier::report::{AttestationReport, Verdict};

use super::serve::EkPolicyArgs;
use super::store::{StoreArgs, open_verifier, verifier_channel};
use crate::{AnyError, runtime};

#[derive(Subcommand)]
pub(crate) enum NodeCommand {
    /// Prove a node's AK lives in a genuine TPM (EK certificate + credential activation)
    /// and bind it to the node.
    Register(Box<RegisterArgs>),
    /// Show one node.
    Status {
        node: String,
        #[command(flatten)]
        target: super::nodes::Target,
    },
    /// Forget a node (its verdict history stays); through a verifier: admin only.
    Remove {
        node: String,
        #[command(flatten)]
        target: super::nodes::Target,
    },
}

#[derive(Args)]
pub(crate) struct RegisterArgs {
    /// The node's attester, `host:port` or a URL.
    address: String,
    /// The node group (baselines apply per group).
    #[arg(long, default_value = "default")]
    group: String,
    #[command(flatten)]
    ek: EkPolicyArgs,
    /// Ask this running verifier (`vigil serve`, with its own EK policy) to register the node.
    #[arg(long, env = "VIGIL_VERIFIER")]
    verifier: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Role whose client certificate to present to `--verifier` (default: admin).
    #[arg(long = "as", env = "VIGIL_ROLE", value_name = "ROLE")]
    as_role: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn node_command(command: NodeCommand) -> Result<Verdict, AnyError> {
    match command {
        NodeCommand::Register(args) => register(*args),
        NodeCommand::Status { node, target } => super::nodes::node_status(&node, &target),
        NodeCommand::Remove { node, target } => super::nodes::remove_node(&node, &target),
    }
}

pub(crate) fn register(args: RegisterArgs) -> Result<Verdict, AnyError> {
    use vigil_proto::v1::RegisterNodeRequest;
    use vigil_proto::v1::registrar_client::RegistrarClient;
    use vigil_verifier::registration::register::register_node;
    let report = match &args.verifier {
        Some(url) => runtime()?.block_on(async {
            let mut client = RegistrarClient::new(
                verifier_channel(
                    url,
                    args.store.tls_dir.as_deref(),
                    args.as_role.as_deref(),
                    vigil_tls::Role::Admin,
                )
                .await?,
            );
            let result = client
                .register_node(RegisterNodeRequest {
                    address: args.address.clone(),
                    group: args.group.clone(),
                })
                .await
                .map_err(|s| {
                    format!(
                        "verifier refused RegisterNode: {}: {}",
                        s.code(),
                        s.message()
                    )
                })?
                .into_inner();
            Ok::<_, AnyError>(AttestationReport::from_proto(&result))
        })?,
        None => {
            let policy = args.ek.policy()?;
            let verifier = open_verifier(&args.store)?;
            runtime()?.block_on(register_node(verifier, &policy, &args.address, &args.group))?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    Ok(report.verdict)
}
