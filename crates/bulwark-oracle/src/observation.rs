//! Validators' signed price observations: the wire types live in `bulwark-types` (blocks carry
//! them); this module re-exports them where the oracle's users expect them.

pub use bulwark_types::observation::{
    OBSERVATION_BYTES_MAX, OBSERVATION_NAMESPACE, Observation, SIGNED_OBSERVATION_BYTES_MAX,
    SignedObservation, verify_batch,
};
