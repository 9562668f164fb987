//! Equality saturation with egg (not written yet).
