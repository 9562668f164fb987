//! The e-graph language of a network graph.
//!
//! Every node of the graph becomes one e-node whose first child is its name (a [`NodeName`]
//! leaf), so two distinct nodes never merge, and whose value children are the e-classes of its
//! inputs. Graph inputs and weights are [`ValueName`] leaves, one symbol each, so two SE blocks
//! never share a weight class. The ops the rules look at (GlobalAveragePool, Conv, unary
//! activations, Mul, Add) have their own heads; every other op is a generic `op` e-node that is
//! rebuilt from the original node of the same name. Attributes the rules need are leaves too:
//! [`ConvAttr`] and [`ActKind`]. An absent optional input is the `none` leaf.
//!
//! Fused e-nodes are named after the node they replace at the root:
//! ```text
//! (fconv @name conv-attrs act post-act x w b r)        FusedConv; act, post-act, b, r may be none
//! (se @name act gate post-act x w1 b1 w2 b2 r)          SeBlock; post-act, b1, b2, r may be none
//! (se-gate @name act gate x w1 b1 w2 b2)                partial: gate(fc2(act(fc1(mean(x)))))
//! ```

use std::fmt;
use std::str::FromStr;

use egg::{Id, Symbol, define_language};
use excite_ir::Act;
use excite_ir::op::Conv;

define_language! {
    /// A network graph as egg terms.
    pub enum SeLang {
        // [name, x]
        "gap" = Gap([Id; 2]),
        // [name, attrs, x, w, b | none]
        "conv" = Conv([Id; 5]),
        // [name, kind, x]
        "act" = Act([Id; 3]),
        // [name, a, b]
        "mul" = Mul([Id; 3]),
        // [name, a, b]
        "add" = Add([Id; 3]),
        // [name, inputs...]: any other op, rebuilt from the node called `name`.
        "op" = Op(Box<[Id]>),
        // [name, attrs, act | none, post | none, x, w, b | none, r | none]
        "fconv" = FusedConv([Id; 8]),
        // [name, act, gate, post | none, x, w1, b1 | none, w2, b2 | none, r | none]
        "se" = SeBlock([Id; 10]),
        // [name, act, gate, x, w1, b1 | none, w2, b2 | none]; partial, never extracted.
        "se-gate" = SeGate([Id; 8]),
        "none" = NoValue,
        Name(NodeName),
        Value(ValueName),
        Attrs(ConvAttr),
        Kind(ActKind),
    }
}

impl SeLang {
    /// The children that are values (tensors), as opposed to the name and attribute leaves.
    /// `none` children are included: they are leaves without a shape.
    pub fn value_children(&self) -> &[Id] {
        match self {
            SeLang::Gap(c) => &c[1..],
            SeLang::Mul(c) | SeLang::Add(c) => &c[1..],
            SeLang::Act(c) => &c[2..],
            SeLang::Conv(c) => &c[2..],
            SeLang::Op(c) => c.get(1..).unwrap_or(&[]),
            SeLang::FusedConv(c) => &c[4..],
            SeLang::SeBlock(c) => &c[4..],
            SeLang::SeGate(c) => &c[3..],
            SeLang::NoValue
            | SeLang::Name(_)
            | SeLang::Value(_)
            | SeLang::Attrs(_)
            | SeLang::Kind(_) => &[],
        }
    }

    /// The e-class of the node's name leaf, for every e-node that stands for a graph node.
    pub fn name_child(&self) -> Option<Id> {
        match self {
            SeLang::Gap(c) => Some(c[0]),
            SeLang::Mul(c) | SeLang::Add(c) | SeLang::Act(c) => Some(c[0]),
            SeLang::Conv(c) => Some(c[0]),
            SeLang::Op(c) => c.first().copied(),
            SeLang::FusedConv(c) | SeLang::SeGate(c) => Some(c[0]),
            SeLang::SeBlock(c) => Some(c[0]),
            _ => None,
        }
    }
}

/// The user's name of a graph node, written `@name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName(pub Symbol);

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

impl FromStr for NodeName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.strip_prefix('@')
            .map(|n| NodeName(Symbol::from(n)))
            .ok_or_else(|| format!("`{s}` is not a node name (@name)"))
    }
}

/// A graph input or weight, written `$name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValueName(pub Symbol);

impl fmt::Display for ValueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.0)
    }
}

impl FromStr for ValueName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.strip_prefix('$')
            .map(|n| ValueName(Symbol::from(n)))
            .ok_or_else(|| format!("`{s}` is not a value name ($name)"))
    }
}

/// The attributes of a Conv, hashable, written `conv:s1x1:p0,0,0,0:d1x1:g1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConvAttr {
    pub strides: [usize; 2],
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    pub group: usize,
}

impl ConvAttr {
    pub fn to_conv(self) -> Conv {
        Conv {
            strides: self.strides,
            pads: self.pads,
            dilations: self.dilations,
            group: self.group,
        }
    }

    /// Strides 1, no padding, dilation 1, one group: with a 1x1 kernel, a matrix product over
    /// channels at every pixel.
    pub fn is_pointwise(self) -> bool {
        self == ConvAttr::from(&Conv::default())
    }
}

impl From<&Conv> for ConvAttr {
    fn from(c: &Conv) -> Self {
        ConvAttr {
            strides: c.strides,
            pads: c.pads,
            dilations: c.dilations,
            group: c.group,
        }
    }
}

impl fmt::Display for ConvAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [sh, sw] = self.strides;
        let [t, l, b, r] = self.pads;
        let [dh, dw] = self.dilations;
        write!(
            f,
            "conv:s{sh}x{sw}:p{t},{l},{b},{r}:d{dh}x{dw}:g{}",
            self.group
        )
    }
}

impl FromStr for ConvAttr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not conv attributes (conv:s1x1:p0,0,0,0:d1x1:g1)");
        let nums = |part: Option<&str>, prefix: char, sep: char| -> Result<Vec<usize>, String> {
            let body = part.and_then(|p| p.strip_prefix(prefix)).ok_or_else(bad)?;
            body.split(sep)
                .map(|n| n.parse::<usize>().map_err(|_| bad()))
                .collect()
        };
        let mut parts = s.split(':');
        if parts.next() != Some("conv") {
            return Err(bad());
        }
        let strides = nums(parts.next(), 's', 'x')?;
        let pads = nums(parts.next(), 'p', ',')?;
        let dilations = nums(parts.next(), 'd', 'x')?;
        let group = nums(parts.next(), 'g', ',')?;
        match (&strides[..], &pads[..], &dilations[..], &group[..]) {
            (&[sh, sw], &[t, l, b, r], &[dh, dw], &[g]) if parts.next().is_none() => Ok(ConvAttr {
                strides: [sh, sw],
                pads: [t, l, b, r],
                dilations: [dh, dw],
                group: g,
            }),
            _ => Err(bad()),
        }
    }
}

/// An activation as a hashable leaf (floats compared by their bits), written as its op name
/// with any parameters after colons: `Relu`, `HardSigmoid:0.16666667:0.5`, `Clip:0.0:6.0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActKind(pub Act);

impl ActKind {
    /// A total key: the variant and its parameters' bit patterns.
    fn key(&self) -> (u8, u32, u32) {
        match self.0 {
            Act::Relu => (0, 0, 0),
            Act::Sigmoid => (1, 0, 0),
            Act::HardSigmoid { alpha, beta } => (2, alpha.to_bits(), beta.to_bits()),
            Act::HardSwish => (3, 0, 0),
            Act::Silu => (4, 0, 0),
            Act::Clip { min, max } => (5, min.to_bits(), max.to_bits()),
        }
    }
}

impl Eq for ActKind {}

impl std::hash::Hash for ActKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for ActKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ActKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl fmt::Display for ActKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Act::HardSigmoid { alpha, beta } => write!(f, "HardSigmoid:{alpha:?}:{beta:?}"),
            Act::Clip { min, max } => write!(f, "Clip:{min:?}:{max:?}"),
            a => f.write_str(a.name()),
        }
    }
}

impl FromStr for ActKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not an activation");
        let (head, args) = s.split_once(':').unwrap_or((s, ""));
        let pair = || -> Result<(f32, f32), String> {
            let (a, b) = args.split_once(':').ok_or_else(bad)?;
            Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
        };
        let act = match head {
            "Relu" => Act::Relu,
            "Sigmoid" => Act::Sigmoid,
            "HardSwish" => Act::HardSwish,
            "Silu" => Act::Silu,
            "HardSigmoid" => {
                let (alpha, beta) = pair()?;
                Act::HardSigmoid { alpha, beta }
            }
            "Clip" => {
                let (min, max) = pair()?;
                Act::Clip { min, max }
            }
            _ => return Err(bad()),
        };
        if args.is_empty() == matches!(act, Act::HardSigmoid { .. } | Act::Clip { .. }) {
            return Err(bad());
        }
        Ok(ActKind(act))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egg::RecExpr;
    use expect_test::expect;

    #[test]
    fn leaves_print_and_parse_back() {
        let leaves = [
            "@se.mul",
            "$fc1.weight",
            "conv:s2x1:p1,0,1,0:d1x2:g4",
            "Relu",
            "HardSigmoid:0.16666667:0.5",
            "Clip:-inf:6.0",
            "none",
        ];
        let mut checked = 0;
        for leaf in leaves {
            let e: RecExpr<SeLang> = leaf.parse().expect("leaf parses");
            assert_eq!(e.to_string(), leaf);
            checked += 1;
        }
        assert_eq!(checked, 7);
        for bad in ["Relu:1:2", "HardSigmoid", "conv:s1x1:p0:d1x1:g1"] {
            assert!(bad.parse::<ActKind>().is_err() && bad.parse::<ConvAttr>().is_err());
        }
    }

    #[test]
    fn a_term_prints_in_s_expression_form() {
        let e: RecExpr<SeLang> =
            "(mul @m $x (act @g Sigmoid (conv @c conv:s1x1:p0,0,0,0:d1x1:g1 (gap @p $x) $w none)))"
                .parse()
                .expect("term parses");
        expect![[r#"(mul @m $x (act @g Sigmoid (conv @c conv:s1x1:p0,0,0,0:d1x1:g1 (gap @p $x) $w none)))"#]]
            .assert_eq(&e.to_string());
        let conv = e.as_ref().iter().find(|n| matches!(n, SeLang::Conv(_)));
        assert_eq!(conv.map(|c| c.value_children().len()), Some(3));
    }
}
