//! Runtime (to be written).
