//! Baselines: what "trusted" means for a group of nodes, as versioned, reviewable rules.
//!
//! `file` reads and validates the TOML a person writes; `rules` judges one value; `appraise`
//! is the pure appraisal function; `capture` writes a baseline from a golden node's claims;
//! `signature` checks the optional detached signature of a baseline file.

pub mod appraise;
pub mod capture;
pub mod file;
pub mod ima;
pub mod keylime;
pub mod rules;
pub mod signature;

pub use appraise::{Appraisal, Baseline, BaselineRef, Outcome, RuleResult, appraise};
pub use file::{BaselineError, CompiledBaseline, parse_baseline};

/// SHA-256 of a baseline file's bytes, hex: the identity of its content.
pub fn content_digest(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

#[cfg(test)]
mod tests;
