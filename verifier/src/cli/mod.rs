//! Subcommands of `vigil` that live outside main.rs.

pub mod baseline;
pub mod ima;
pub mod nodes;
pub mod npu;
pub mod watch;

#[cfg(test)]
mod config_tests;
