//! Compiles `proto/vigil/v1/*.proto` with protox (pure Rust, no protoc needed) and
//! keeps the file descriptor set for gRPC server reflection.
use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = [
        "proto/vigil/v1/evidence.proto",
        "proto/vigil/v1/attester.proto",
        "proto/vigil/v1/verifier.proto",
        "proto/vigil/v1/audit.proto",
        "proto/vigil/v1/baselines.proto",
    ];
    let descriptors = protox::compile(files, ["proto"])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("vigil_v1_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
