//! Byzantine validators: Bulwark's own, and Commonware's consensus mocks.
//!
//! Each behaviour is one file. Bulwark's reach a validator only through the lab: the harness
//! starts that validator with `bulwark_node::engine::start_with`, wrapping its honest exchange
//! application (every proposer role runs in one wrapper, `rewriter::ProposalRewriter`: `censor`, `duty_breaker`, `withholder`, `mark_proposer`, `front_runner`,
//! `quote_sniper`, `time_splitter`), or
//! gives its gossip sender to a flooding loop (`flooder`); nothing in `bulwark-node` can turn
//! one on. Commonware's mocks (`mocks.rs`) run under a validator's key in place of the
//! validator (an impostor).

pub mod censor;
pub mod duty_breaker;
pub mod flooder;
pub mod front_runner;
pub mod mark_proposer;
pub mod mocks;
pub mod quote_sniper;
pub mod rewriter;
pub mod time_splitter;
pub mod withholder;

pub use censor::{Censor, CensorLog};
pub use duty_breaker::{Duty, DutyBreaker, DutySwitch};
pub use flooder::Flood;
pub use front_runner::{FrontRunLog, FrontRunner};
pub use mark_proposer::MarkProposer;
pub use quote_sniper::{QuoteSniper, SnipeLog};
pub use rewriter::{ProposalRewriter, Rewrite};
pub use time_splitter::TimeSplitter;
pub use withholder::{Withhold, WithholdLog, Withholder};
