//! Option pricing that survives bad data (being built).
