//! GPU backend: WGSL compute shaders. Not written yet (issue 5).
#![forbid(unsafe_code)]
