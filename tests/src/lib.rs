//! Test harness crate: conformance runners live in tests/.
