//! The `bulwark` command line's library: everything the subcommands do, so that benchmarks
//! and tests can call it without a process.

pub mod bots;
pub mod cli;
pub mod client;
pub mod cluster_bench;
pub mod config;
pub mod deribit_client;
pub mod devnet;
pub mod feed;
pub mod gateway_cli;
pub mod genesis;
pub mod keys;
pub mod options;
pub mod process_cluster;
pub mod simulate;
pub mod soak;
pub mod stress;
pub mod validator;
pub mod workload;
