//! The Deribit-compatible JSON-RPC API (see `DERIBIT_CONTRACT.md`).

pub mod auth;
pub mod convert;
pub mod error;
pub mod methods;
