//! Node registration: proving an AK lives in a genuine TPM (EK certificate chain, then
//! credential activation) before any quote from it is trusted.

pub mod cab;
pub mod credential;
pub mod register;
pub mod trust;
