//! The `bulwark` command line's library: everything the subcommands do, so that benchmarks
//! and tests can call it without a process.

pub mod options;
pub mod workload;
