//! The measured-boot event log: parse (`parse`), replay against PCRs (`replay`), render for
//! people (`render`), and typed boot claims from event data (`claims`).

pub mod claims;
pub mod parse;
pub mod render;
pub mod replay;
pub mod uefi;

pub use claims::{Claim, ClaimStatus, ClaimValue, bind_to_quote, claims};
pub use parse::{Event, EventLog, LogFormat, ParseError, parse};
pub use replay::{PcrMismatch, Replay, compare, replay};
