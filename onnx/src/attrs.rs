//! Reading node attributes: typed getters that check the attribute's declared type, and the
//! per-op list of known attributes (anything else is refused rather than silently ignored).

use crate::error::OnnxError;
use crate::proto::attribute_proto::AttributeType as A;
use crate::proto::{AttributeProto, NodeProto, TensorProto};

/// A node being imported: its unique name, op, the model's opset, and the ONNX node.
#[derive(Debug)]
pub struct NodeCx<'a> {
    pub name: &'a str,
    pub op: &'a str,
    pub opset: i64,
    pub node: &'a NodeProto,
}

impl<'a> NodeCx<'a> {
    pub fn attr_err(&self, attr: &str, msg: impl Into<String>) -> OnnxError {
        OnnxError::UnsupportedAttribute {
            node: self.name.to_string(),
            op: self.op.to_string(),
            attr: attr.to_string(),
            msg: msg.into(),
        }
    }

    pub fn unsupported(&self, msg: impl Into<String>) -> OnnxError {
        OnnxError::Unsupported {
            node: self.name.to_string(),
            op: self.op.to_string(),
            msg: msg.into(),
        }
    }

    /// Refuses any attribute not in `known`, any given twice (which one would count is not
    /// defined), and references to a function's attributes (`ref_attr_name`) outside a function.
    pub fn known(&self, known: &[&str]) -> Result<(), OnnxError> {
        for (i, a) in self.node.attribute.iter().enumerate() {
            let name = a.name.as_deref().unwrap_or("");
            if !known.contains(&name) {
                return Err(self.attr_err(
                    name,
                    format!("unknown attribute for {} at opset {}", self.op, self.opset),
                ));
            }
            if self.node.attribute[..i]
                .iter()
                .any(|b| b.name.as_deref() == Some(name))
            {
                return Err(self.attr_err(name, "given twice"));
            }
            if a.ref_attr_name.as_deref().is_some_and(|r| !r.is_empty()) {
                return Err(self.attr_err(
                    name,
                    "refers to a function attribute (ref_attr_name) outside a function",
                ));
            }
        }
        Ok(())
    }

    /// The attribute `name`, checked to be of type `ty` when the model declares a type.
    fn get(&self, name: &str, ty: A) -> Result<Option<&'a AttributeProto>, OnnxError> {
        let Some(a) = self
            .node
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
        else {
            return Ok(None);
        };
        match a.r#type {
            Some(t) if t != ty as i32 && t != A::Undefined as i32 => {
                let got = A::try_from(t).map_or("an unknown type", |t| t.as_str_name());
                Err(self.attr_err(
                    name,
                    format!("expected type {}, got {got}", ty.as_str_name()),
                ))
            }
            _ => Ok(Some(a)),
        }
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64, OnnxError> {
        Ok(self.get(name, A::Int)?.and_then(|a| a.i).unwrap_or(default))
    }

    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, OnnxError> {
        Ok(self.get(name, A::Int)?.and_then(|a| a.i))
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32, OnnxError> {
        Ok(self
            .get(name, A::Float)?
            .and_then(|a| a.f)
            .unwrap_or(default))
    }

    pub fn ints(&self, name: &str) -> Result<Option<&'a [i64]>, OnnxError> {
        Ok(self.get(name, A::Ints)?.map(|a| a.ints.as_slice()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<&'a [f32]>, OnnxError> {
        Ok(self.get(name, A::Floats)?.map(|a| a.floats.as_slice()))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, OnnxError> {
        Ok(self
            .get(name, A::String)?
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned()))
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, OnnxError> {
        Ok(self.get(name, A::Tensor)?.and_then(|a| a.t.as_ref()))
    }

    /// A boolean attribute stored as an int (0 or 1).
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, OnnxError> {
        match self.int(name, i64::from(default))? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.attr_err(name, format!("must be 0 or 1, got {v}"))),
        }
    }

    /// A pair of positive integers (strides, dilations), `default` when absent.
    pub fn pair(&self, name: &str, default: [usize; 2]) -> Result<[usize; 2], OnnxError> {
        match self.ints(name)? {
            None => Ok(default),
            Some([a, b]) if *a > 0 && *b > 0 => Ok([*a as usize, *b as usize]),
            Some(v) => Err(self.attr_err(
                name,
                format!("must be two positive integers (2-D only), got {}", brief(v)),
            )),
        }
    }

    /// Refuses a node with fewer than `lo` or more than `hi` inputs, or with more than `outs`
    /// outputs.
    pub fn arity(&self, lo: usize, hi: usize, outs: usize) -> Result<(), OnnxError> {
        let n = self.node.input.len();
        if n < lo || n > hi {
            return Err(self.unsupported(format!("takes {lo} to {hi} inputs, has {n}")));
        }
        let m = self.node.output.len();
        if m == 0 || m > outs {
            return Err(self.unsupported(format!("takes 1 to {outs} outputs, has {m}")));
        }
        Ok(())
    }

    /// Name of input `i`, `None` when absent or empty (an omitted optional input).
    pub fn input_name(&self, i: usize) -> Option<&'a str> {
        self.node
            .input
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Name of output `i`, `None` when absent or empty.
    pub fn output_name(&self, i: usize) -> Option<&'a str> {
        self.node
            .output
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// A list for an error message: in full up to 8 entries, else its first 8 and its length (an
/// attribute or shape from a file can hold millions).
pub(crate) fn brief<T: std::fmt::Debug>(v: &[T]) -> String {
    const SHOWN: usize = 8;
    if v.len() <= SHOWN {
        format!("{v:?}")
    } else {
        let head: Vec<String> = v[..SHOWN].iter().map(|x| format!("{x:?}")).collect();
        format!("[{}, ... ({} entries)]", head.join(", "), v.len())
    }
}
