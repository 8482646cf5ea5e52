//! Evidence checks, one module per evidence kind. They take bytes, return typed facts or a
//! typed failure naming the check; they never consult the store or decide policy.

pub mod ascend;
pub mod eventlog;
pub mod gpu;
pub mod ima;
pub mod tpm;
