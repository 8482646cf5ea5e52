//! Linux IMA measurement lists, as the kernel writes them and as Vigil checks them.
//!
//! ```text
//! bytes ─ list::parse (binary or ASCII; entries with the exact bytes their template hash covers)
//!       ─ replay (template hashes, PCR 10 per bank, the prefix the quote proves)
//!       ─ template::decode (what each entry measured: file, digest, signature)
//!       ─ signature::verify (the file signature against configured keys)
//! ```
//!
//! Nothing here decides whether a file is allowed: that is the verifier's baseline. Parsers
//! return what the list says or an error naming the entry and its offset or line.

pub mod ascii;
pub mod error;
pub mod hash;
pub mod list;
pub mod replay;
pub mod signature;
pub mod template;

pub use error::{ParseError, TemplateError};
pub use hash::HashAlg;
pub use list::{Entry, Format, Location, MeasurementList, TemplateHash, parse};
pub use replay::{Quoted, ReplayError, ReplayState, Replayed, boot_aggregates, replay};
pub use signature::{
    ImaSignature, KeyError, SignatureError, VerificationKey, Verified, parse_keys, parse_signature,
    verify,
};
pub use template::{Kind, Measurement, decode};
