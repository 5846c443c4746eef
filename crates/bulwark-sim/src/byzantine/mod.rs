//! Byzantine validators: Bulwark's own, and Commonware's consensus mocks.
//!
//! Each behaviour is one file. Bulwark's reach a validator only through the lab: the harness
//! starts that validator with `bulwark_node::engine::start_with`, wrapping its honest exchange
//! application; nothing in `bulwark-node` can turn one on. Commonware's mocks (`mocks.rs`) run
//! under a validator's key in place of the validator (an impostor).

pub mod censor;
pub mod duty_breaker;
pub mod mocks;
pub mod rewriter;

pub use censor::{Censor, CensorLog};
pub use duty_breaker::{Duty, DutyBreaker, DutySwitch};
pub use rewriter::{ProposalRewriter, Rewrite};
