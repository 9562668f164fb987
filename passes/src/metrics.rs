//! Graph metrics: kernels and bytes moved (not written yet).
