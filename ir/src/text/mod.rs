//! The `.seir` text form of a graph: a printer and a parser that round-trip, and the
//! safetensors weight files that sit beside a `.seir` file.
//!
//! Like Cranelift's `.clif`, the text is both the debug output and the test input, and small
//! enough to write by hand. One line per declaration:
//!
//! ```text
//! # An SE block.
//! graph se_block {
//!   input x: f32[N,64,56,56]
//!   weight fc1.w: f32[4,64,1,1]
//!   weight fc1.b: f32[4]
//!   node squeeze = GlobalAveragePool(x) -> s: f32[N,64,1,1]
//!   node fc1 = Conv(s, fc1.w, fc1.b) {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], group=1} -> z: f32[N,4,1,1]
//!   output z
//! }
//! ```
//!
//! `print(&parse(text)?) == text` for any text the printer wrote; `docs/ir.md` has the grammar
//! and every op. Weight data is not part of the text: [`WeightStore`] holds it by name and
//! converts to and from safetensors bytes. This module does no file I/O.

mod attrs;
mod cursor;
mod parse;
mod print;
mod weights;

pub use parse::{parse, parse_verified, parse_with_placeholder_weights, verify_declared};
pub use print::{print, print_inline_weights};
pub use weights::WeightStore;

#[cfg(test)]
mod tests;
