//! naga validation of generated modules: a module that reaches the runtime has parsed and
//! validated, so a backend bug shows up as a typed error at compile time, not on a device.

use naga::valid::{Capabilities, ValidationFlags, Validator};

use crate::WgslError;

/// Parses and validates one WGSL module (named `module` in errors); returns the bytes of
/// workgroup memory it declares.
pub fn validate(module: &str, source: &str) -> Result<u32, WgslError> {
    let invalid = |msg: String| WgslError::Invalid {
        module: module.to_string(),
        msg,
        source_text: source.to_string(),
    };
    let parsed =
        naga::front::wgsl::parse_str(source).map_err(|e| invalid(e.emit_to_string(source)))?;
    Validator::new(ValidationFlags::all(), Capabilities::empty())
        .validate(&parsed)
        .map_err(|e| invalid(e.emit_to_string(source)))?;
    let ctx = parsed.to_ctx();
    Ok(parsed
        .global_variables
        .iter()
        .filter(|(_, v)| v.space == naga::AddressSpace::WorkGroup)
        .map(|(_, v)| parsed.types[v.ty].inner.size(ctx))
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_valid_module_and_rejects_a_type_error() {
        let ok = "@group(0) @binding(0) var<storage, read_write> y: array<f32>;\n\
                  @compute @workgroup_size(1) fn main() { y[0] = 1.0; }";
        assert_eq!(validate("ok", ok).ok(), Some(0));
        let shared = format!("var<workgroup> t: array<vec4<f32>, 8>;\n{ok}");
        assert_eq!(validate("shared", &shared).ok(), Some(128));
        let bad = ok.replace("1.0", "1u");
        let err = validate("bad", &bad).map_err(|e| e.to_string());
        assert!(
            matches!(&err, Err(m) if m.contains("module `bad`")),
            "{err:?}"
        );
    }
}
