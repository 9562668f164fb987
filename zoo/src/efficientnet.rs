//! EfficientNet-B0 and MobileNetV3-Large, built like timm's `_efficientnet_builder.py`: the
//! architectures are timm's block strings (`ir_r2_k3_s2_e6_c24_se0.25`), decoded here.
//!
//! Blocks: `ds` (depthwise-separable: dw conv, BN+act, [SE], pw conv, BN), `ir` (inverted
//! residual: pw expand, BN+act, dw conv, BN+act, [SE], pw project, BN), `cn` (conv, BN+act).
//! A block adds its input when stride is 1 and channels are unchanged. The two models differ in
//! their SE modules: EfficientNet reduces to `round(block input * 0.25)` with SiLU inside and a
//! sigmoid gate; MobileNetV3 to `make_divisible(expanded * 0.25, 8)` with ReLU and a
//! hard-sigmoid gate. Names follow timm (`blocks.1.0.conv_pw`, `blocks.1.0.se.conv_reduce`).

use excite_ir::{IrError, ValueId};

use crate::net::{Act, Cv, Net, Se, T, make_divisible};
use crate::resnet::RESIDUAL_GAMMA;

const EPS: f32 = 1e-5;

const EFFICIENTNET_B0: &[&[&str]] = &[
    &["ds_r1_k3_s1_e1_c16_se0.25"],
    &["ir_r2_k3_s2_e6_c24_se0.25"],
    &["ir_r2_k5_s2_e6_c40_se0.25"],
    &["ir_r3_k3_s2_e6_c80_se0.25"],
    &["ir_r3_k5_s1_e6_c112_se0.25"],
    &["ir_r4_k5_s2_e6_c192_se0.25"],
    &["ir_r1_k3_s1_e6_c320_se0.25"],
];

const MOBILENETV3_LARGE: &[&[&str]] = &[
    &["ds_r1_k3_s1_e1_c16_nre"],
    &["ir_r1_k3_s2_e4_c24_nre", "ir_r1_k3_s1_e3_c24_nre"],
    &["ir_r3_k5_s2_e3_c40_se0.25_nre"],
    &[
        "ir_r1_k3_s2_e6_c80",
        "ir_r1_k3_s1_e2.5_c80",
        "ir_r2_k3_s1_e2.3_c80",
    ],
    &["ir_r2_k3_s1_e6_c112_se0.25"],
    &["ir_r3_k5_s2_e6_c160_se0.25"],
    &["cn_r1_k1_s1_c960"],
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Ds,
    Ir,
    Cn,
}

/// One decoded block string.
#[derive(Clone, Copy, Debug, PartialEq)]
struct BlockArgs {
    kind: Kind,
    repeats: usize,
    k: usize,
    stride: usize,
    exp: f64,
    out: usize,
    se: Option<f64>,
    relu: bool,
}

/// Decodes one of timm's block strings (the subset these two models use).
fn decode(s: &str) -> Option<BlockArgs> {
    let mut parts = s.split('_');
    let kind = match parts.next()? {
        "ds" => Kind::Ds,
        "ir" => Kind::Ir,
        "cn" => Kind::Cn,
        _ => return None,
    };
    let mut a = BlockArgs {
        kind,
        repeats: 1,
        k: 3,
        stride: 1,
        exp: 1.0,
        out: 0,
        se: None,
        relu: false,
    };
    for p in parts {
        if p == "nre" {
            a.relu = true;
        } else if let Some(v) = p.strip_prefix("se") {
            a.se = Some(v.parse().ok()?);
        } else {
            let (key, v) = p.split_at(1);
            match key {
                "r" => a.repeats = v.parse().ok()?,
                "k" => a.k = v.parse().ok()?,
                "s" => a.stride = v.parse().ok()?,
                "e" => a.exp = v.parse().ok()?,
                "c" => a.out = v.parse().ok()?,
                _ => return None,
            }
        }
    }
    Some(a)
}

/// The model-wide choices.
#[derive(Clone, Copy, Debug)]
struct Family {
    act: Act,
    se: Se,
    /// SE width from the expanded channels (MobileNetV3) or the block input (EfficientNet).
    se_from_exp: bool,
}

const EFFICIENTNET: Family = Family {
    act: Act::Silu,
    se: Se {
        fc: ["conv_reduce", "conv_expand"],
        act: Act::Silu,
        gate: Act::Sigmoid,
    },
    se_from_exp: false,
};

const MOBILENETV3: Family = Family {
    act: Act::HardSwish,
    se: Se {
        fc: ["conv_reduce", "conv_expand"],
        act: Act::Relu,
        gate: Act::HardSigmoid,
    },
    se_from_exp: true,
};

/// EfficientNet-B0 (timm `efficientnet_b0`): stem 32, head 1280, dropout 0.2.
pub(crate) fn efficientnet_b0(net: &mut Net, x: T, classes: usize) -> Result<ValueId, IrError> {
    let fam = EFFICIENTNET;
    let x = stem(net, x, 32, fam.act)?;
    let x = blocks(net, x, EFFICIENTNET_B0, fam)?;
    let x = net.conv("conv_head", x, 1280, Cv::k(1))?;
    let x = net.bn("bn2", x, EPS, 1.0)?;
    let x = net.act("bn2.act", x, fam.act)?;
    let x = net.global_pool("global_pool", x)?;
    net.classifier(x, "classifier", classes, true)
}

/// MobileNetV3-Large 1.0 (timm `mobilenetv3_large_100`): stem 16, then the efficient head:
/// pool, biased 1x1 `conv_head` to 1280, hard-swish, dropout 0.2, classifier.
pub(crate) fn mobilenetv3_large(net: &mut Net, x: T, classes: usize) -> Result<ValueId, IrError> {
    let fam = MOBILENETV3;
    let x = stem(net, x, 16, fam.act)?;
    let x = blocks(net, x, MOBILENETV3_LARGE, fam)?;
    let x = net.global_pool("global_pool", x)?;
    let x = net.conv("conv_head", x, 1280, Cv::k(1).bias())?;
    let x = net.act("act2", x, fam.act)?;
    net.classifier(x, "classifier", classes, true)
}

fn stem(net: &mut Net, x: T, c: usize, act: Act) -> Result<T, IrError> {
    let x = net.conv("conv_stem", x, c, Cv::k(3).stride(2))?;
    let x = net.bn("bn1", x, EPS, 1.0)?;
    net.act("bn1.act", x, act)
}

fn blocks(net: &mut Net, mut x: T, arch: &[&[&str]], fam: Family) -> Result<T, IrError> {
    for (si, stage) in arch.iter().enumerate() {
        let mut bi = 0;
        for s in *stage {
            let a = decode(s).ok_or_else(|| {
                IrError::node(s, "block", "not a block string this decoder knows")
            })?;
            for r in 0..a.repeats {
                let stride = if r == 0 { a.stride } else { 1 };
                x = block(net, &format!("blocks.{si}.{bi}"), x, a, stride, fam)?;
                bi += 1;
            }
        }
    }
    Ok(x)
}

/// BN followed by the block's activation, named `{bn}` and `{bn}.act` (timm's BatchNormAct2d).
fn bn_act(net: &mut Net, name: &str, x: T, act: Option<Act>, gamma: f32) -> Result<T, IrError> {
    let y = net.bn(name, x, EPS, gamma)?;
    match act {
        Some(a) => net.act(&format!("{name}.act"), y, a),
        None => Ok(y),
    }
}

fn block(
    net: &mut Net,
    p: &str,
    x: T,
    a: BlockArgs,
    stride: usize,
    fam: Family,
) -> Result<T, IrError> {
    let act = if a.relu { Act::Relu } else { fam.act };
    let out = make_divisible(a.out as f64, 8, 0.9);
    let skip = stride == 1 && x.c == out && a.kind != Kind::Cn;
    let last_gamma = if skip { RESIDUAL_GAMMA } else { 1.0 };
    let dw = |c: usize| Cv::k(a.k).stride(stride).groups(c);
    let se_rd = |mid: usize| -> usize {
        let ratio = a.se.unwrap_or(0.0);
        if fam.se_from_exp {
            make_divisible(mid as f64 * ratio, 8, 0.9)
        } else {
            (mid as f64 * ratio / a.exp).round_ties_even() as usize
        }
    };
    let y = match a.kind {
        Kind::Cn => {
            let y = net.conv(&format!("{p}.conv"), x, out, Cv::k(a.k).stride(stride))?;
            return bn_act(net, &format!("{p}.bn1"), y, Some(act), 1.0);
        }
        Kind::Ds => {
            let y = net.conv(&format!("{p}.conv_dw"), x, x.c, dw(x.c))?;
            let mut y = bn_act(net, &format!("{p}.bn1"), y, Some(act), 1.0)?;
            if a.se.is_some() {
                y = net.se(
                    &format!("{p}.se"),
                    y,
                    se_rd(x.c),
                    Se {
                        act: se_act(fam, act),
                        ..fam.se
                    },
                )?;
            }
            let y = net.conv(&format!("{p}.conv_pw"), y, out, Cv::k(1))?;
            bn_act(net, &format!("{p}.bn2"), y, None, last_gamma)?
        }
        Kind::Ir => {
            let mid = make_divisible(x.c as f64 * a.exp, 8, 0.9);
            let y = net.conv(&format!("{p}.conv_pw"), x, mid, Cv::k(1))?;
            let y = bn_act(net, &format!("{p}.bn1"), y, Some(act), 1.0)?;
            let y = net.conv(&format!("{p}.conv_dw"), y, mid, dw(mid))?;
            let mut y = bn_act(net, &format!("{p}.bn2"), y, Some(act), 1.0)?;
            if a.se.is_some() {
                y = net.se(
                    &format!("{p}.se"),
                    y,
                    se_rd(mid),
                    Se {
                        act: se_act(fam, act),
                        ..fam.se
                    },
                )?;
            }
            let y = net.conv(&format!("{p}.conv_pwl"), y, out, Cv::k(1))?;
            bn_act(net, &format!("{p}.bn3"), y, None, last_gamma)?
        }
    };
    if skip {
        net.add(&format!("{p}.add"), y, x)
    } else {
        Ok(y)
    }
}

/// The SE's inner activation: MobileNetV3 forces ReLU, EfficientNet uses the block's.
fn se_act(fam: Family, block_act: Act) -> Act {
    if fam.se_from_exp {
        fam.se.act
    } else {
        block_act
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    #[test]
    fn decodes_block_strings() {
        let got: Vec<_> = [
            "ir_r3_k5_s2_e3_c40_se0.25_nre",
            "ds_r1_k3_s1_e1_c16",
            "cn_r1_k1_s1_c960",
            "ir_r2_k3_s1_e2.3_c80",
        ]
        .iter()
        .map(|s| decode(s))
        .collect();
        expect![[r#"
            [
                Some(
                    BlockArgs {
                        kind: Ir,
                        repeats: 3,
                        k: 5,
                        stride: 2,
                        exp: 3.0,
                        out: 40,
                        se: Some(
                            0.25,
                        ),
                        relu: true,
                    },
                ),
                Some(
                    BlockArgs {
                        kind: Ds,
                        repeats: 1,
                        k: 3,
                        stride: 1,
                        exp: 1.0,
                        out: 16,
                        se: None,
                        relu: false,
                    },
                ),
                Some(
                    BlockArgs {
                        kind: Cn,
                        repeats: 1,
                        k: 1,
                        stride: 1,
                        exp: 1.0,
                        out: 960,
                        se: None,
                        relu: false,
                    },
                ),
                Some(
                    BlockArgs {
                        kind: Ir,
                        repeats: 2,
                        k: 3,
                        stride: 1,
                        exp: 2.3,
                        out: 80,
                        se: None,
                        relu: false,
                    },
                ),
            ]
        "#]]
        .assert_debug_eq(&got);
        assert_eq!(decode("xx_r1"), None);
        assert_eq!(decode("ir_q3"), None);
    }
}
