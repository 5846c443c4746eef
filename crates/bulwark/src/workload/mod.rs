//! Workloads for the benchmarks: generated deterministically from a seed, so every run (and
//! every engine given the same file) measures the same stream.

pub mod exchange;
pub mod matching;
