//! The gRPC contract of Vigil (`vigil.v1`), shared by attester, verifier and clients,
//! and the one rule both sides must compute identically: how a quote binds the nonce.

/// Generated messages and services of package `vigil.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("vigil.v1");
}

/// Encoded `FileDescriptorSet` of `vigil.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/vigil_v1_descriptor.bin"));

pub mod binding;
