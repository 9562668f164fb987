//! Element types.
//!
//! Only `f32` is computed today; the enum exists so that `f16` (and integer index types) can be
//! added without touching every value's type.

use std::fmt;

/// The element type of a tensor value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    F32,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
        }
    }

    /// The spelling used by `.seir` (`f32`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
        }
    }

    /// Parses the `.seir` spelling.
    pub fn from_name(s: &str) -> Option<DType> {
        match s {
            "f32" => Some(DType::F32),
            _ => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
