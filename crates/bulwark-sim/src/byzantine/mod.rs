//! Bulwark's own Byzantine validators, beside Commonware's consensus mocks (`conflicter`,
//! `equivocator`, `nuller`, `outdated`, which the scenario runner spawns as impostors).
//!
//! Each behaviour is one file. A behaviour reaches a validator only through the lab: the
//! harness starts that validator with `bulwark_node::engine::start_with`, wrapping its honest
//! exchange application; nothing in `bulwark-node` can turn one on.

pub mod duty_breaker;

pub use duty_breaker::{Duty, DutyBreaker, DutySwitch};
