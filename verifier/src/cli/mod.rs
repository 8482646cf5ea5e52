//! Subcommands of `vigil` that live outside main.rs.

pub mod audit;
pub mod baseline;
pub mod certs;
pub mod db;
pub mod eventlog;
pub mod gpu;
pub mod ima;
pub mod node;
pub mod nodes;
pub mod npu;
pub mod quote;
pub mod serve;
pub mod store;
pub mod verify;
pub mod watch;

#[cfg(test)]
mod config_tests;
