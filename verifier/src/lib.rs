//! Vigil's verifier: checks hardware-rooted evidence, appraises it and records verdicts.
//!
//! Data flows one way: evidence bytes → `evidence::*` (decode, verify signatures) →
//! `attest` (freshness, AK identity, checks) → `report` (verdict) → `store` → reply.

pub mod attest;
pub mod baseline;
pub mod baseline_cache;
pub mod claims;
pub mod connect;
pub mod db_copy;
pub mod evidence;
pub mod impact;
pub mod logging;
pub mod metrics;
pub mod nonce;
pub mod poll;
pub mod pull;
pub mod reappraise;
pub mod registration;
pub mod report;
pub mod result;
pub mod service;
pub mod store;
pub mod store_api;
pub mod store_baselines;
pub mod store_pg;
pub mod store_pool;
pub mod web;
pub mod webhook;
