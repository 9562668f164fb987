//! CPU backend: Cranelift code generation. Not written yet (issue 4).
#![forbid(unsafe_code)]
