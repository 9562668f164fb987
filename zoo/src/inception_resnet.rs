//! Inception-ResNet-v2 (Szegedy et al. 2016) as timm's `inception_resnet_v2`, and its SE
//! variant from the SENet paper.
//!
//! Every `conv_block` is conv (no bias, padding 0 unless given) + BatchNorm (eps 1e-3) + ReLU,
//! named `{block}.conv` / `{block}.bn` / `{block}.act`. The residual blocks (10 x Block35, 20 x
//! Block17, 10 x Block8) concatenate their branches, project back with a biased 1x1 `conv2d`,
//! scale by 0.17 / 0.10 / 0.20 (a `Mul` by a rank-0 constant) and add the input; the last Block8
//! has scale 1 and no ReLU. The SE variant puts an SE module (`C / 16`) on each residual branch,
//! after `conv2d` and before the scaled add: 40 modules.

use excite_ir::{IrError, ValueId};

use crate::net::{Act, Cv, Net, Pl, SE_RELU_SIGMOID, T};

const EPS: f32 = 1e-3;

/// Builds the network on `x` (299x299 by default) and returns the logits.
pub(crate) fn build(net: &mut Net, x: T, se: bool, classes: usize) -> Result<ValueId, IrError> {
    let x = cba(net, "conv2d_1a", x, 32, Cv::k(3).stride(2).pad(0))?;
    let x = cba(net, "conv2d_2a", x, 32, Cv::k(3).pad(0))?;
    let x = cba(net, "conv2d_2b", x, 64, Cv::k(3))?;
    let x = net.pool("maxpool_3a", x, Pl::max(3, 2))?;
    let x = cba(net, "conv2d_3b", x, 80, Cv::k(1))?;
    let x = cba(net, "conv2d_4a", x, 192, Cv::k(3).pad(0))?;
    let x = net.pool("maxpool_5a", x, Pl::max(3, 2))?;
    let mut x = mixed_5b(net, x)?;
    for i in 0..10 {
        x = block35(net, &format!("repeat.{i}"), x, se)?;
    }
    x = mixed_6a(net, x)?;
    for i in 0..20 {
        x = block17(net, &format!("repeat_1.{i}"), x, se)?;
    }
    x = mixed_7a(net, x)?;
    for i in 0..9 {
        x = block8(net, &format!("repeat_2.{i}"), x, 0.2, true, se)?;
    }
    x = block8(net, "block8", x, 1.0, false, se)?;
    let x = cba(net, "conv2d_7b", x, 1536, Cv::k(1))?;
    let x = net.global_pool("global_pool", x)?;
    net.classifier(x, "classif", classes, false)
}

/// timm's `ConvNormAct`: conv, BatchNorm, ReLU.
fn cba(net: &mut Net, p: &str, x: T, c: usize, cv: Cv) -> Result<T, IrError> {
    let y = net.conv(&format!("{p}.conv"), x, c, cv)?;
    let y = net.bn(&format!("{p}.bn"), y, EPS, 1.0)?;
    net.act(&format!("{p}.act"), y, Act::Relu)
}

/// A chain of `conv_block`s named `{p}.0`, `{p}.1`, ...
fn chain(net: &mut Net, p: &str, x: T, convs: &[(usize, Cv)]) -> Result<T, IrError> {
    let mut y = x;
    for (i, &(c, cv)) in convs.iter().enumerate() {
        y = cba(net, &format!("{p}.{i}"), y, c, cv)?;
    }
    Ok(y)
}

fn mixed_5b(net: &mut Net, x: T) -> Result<T, IrError> {
    let b0 = cba(net, "mixed_5b.branch0", x, 96, Cv::k(1))?;
    let b1 = chain(
        net,
        "mixed_5b.branch1",
        x,
        &[(48, Cv::k(1)), (64, Cv::k(5))],
    )?;
    let b2 = chain(
        net,
        "mixed_5b.branch2",
        x,
        &[(64, Cv::k(1)), (96, Cv::k(3)), (96, Cv::k(3))],
    )?;
    let p = net.pool("mixed_5b.branch3.0", x, Pl::avg(3, 1).pad(1))?;
    let b3 = cba(net, "mixed_5b.branch3.1", p, 64, Cv::k(1))?;
    net.concat("mixed_5b.cat", &[b0, b1, b2, b3])
}

fn mixed_6a(net: &mut Net, x: T) -> Result<T, IrError> {
    let b0 = cba(net, "mixed_6a.branch0", x, 384, Cv::k(3).stride(2).pad(0))?;
    let convs = [
        (256, Cv::k(1)),
        (256, Cv::k(3)),
        (384, Cv::k(3).stride(2).pad(0)),
    ];
    let b1 = chain(net, "mixed_6a.branch1", x, &convs)?;
    let b2 = net.pool("mixed_6a.branch2", x, Pl::max(3, 2))?;
    net.concat("mixed_6a.cat", &[b0, b1, b2])
}

fn mixed_7a(net: &mut Net, x: T) -> Result<T, IrError> {
    let s2 = Cv::k(3).stride(2).pad(0);
    let b0 = chain(net, "mixed_7a.branch0", x, &[(256, Cv::k(1)), (384, s2)])?;
    let b1 = chain(net, "mixed_7a.branch1", x, &[(256, Cv::k(1)), (288, s2)])?;
    let b2 = chain(
        net,
        "mixed_7a.branch2",
        x,
        &[(256, Cv::k(1)), (288, Cv::k(3)), (320, s2)],
    )?;
    let b3 = net.pool("mixed_7a.branch3", x, Pl::max(3, 2))?;
    net.concat("mixed_7a.cat", &[b0, b1, b2, b3])
}

/// The residual join shared by the three block kinds: project the concatenated branches with
/// `conv2d`, [SE], scale, add the input, [ReLU].
fn residual(
    net: &mut Net,
    p: &str,
    x: T,
    branches: &[T],
    scale: f32,
    relu: bool,
    se: bool,
) -> Result<T, IrError> {
    let cat = net.concat(&format!("{p}.cat"), branches)?;
    let mut y = net.conv(&format!("{p}.conv2d"), cat, x.c, Cv::k(1).bias())?;
    if se {
        y = net.se(&format!("{p}.se"), y, x.c / 16, SE_RELU_SIGMOID)?;
    }
    if scale != 1.0 {
        y = net.scale(&format!("{p}.scale"), y, scale)?;
    }
    let y = net.add(&format!("{p}.add"), y, x)?;
    if relu {
        net.act(&format!("{p}.act"), y, Act::Relu)
    } else {
        Ok(y)
    }
}

fn block35(net: &mut Net, p: &str, x: T, se: bool) -> Result<T, IrError> {
    let b0 = cba(net, &format!("{p}.branch0"), x, 32, Cv::k(1))?;
    let b1 = chain(
        net,
        &format!("{p}.branch1"),
        x,
        &[(32, Cv::k(1)), (32, Cv::k(3))],
    )?;
    let convs = [(32, Cv::k(1)), (48, Cv::k(3)), (64, Cv::k(3))];
    let b2 = chain(net, &format!("{p}.branch2"), x, &convs)?;
    residual(net, p, x, &[b0, b1, b2], 0.17, true, se)
}

fn block17(net: &mut Net, p: &str, x: T, se: bool) -> Result<T, IrError> {
    let b0 = cba(net, &format!("{p}.branch0"), x, 192, Cv::k(1))?;
    let convs = [
        (128, Cv::k(1)),
        (160, Cv::rect(1, 7)),
        (192, Cv::rect(7, 1)),
    ];
    let b1 = chain(net, &format!("{p}.branch1"), x, &convs)?;
    residual(net, p, x, &[b0, b1], 0.10, true, se)
}

fn block8(net: &mut Net, p: &str, x: T, scale: f32, relu: bool, se: bool) -> Result<T, IrError> {
    let b0 = cba(net, &format!("{p}.branch0"), x, 192, Cv::k(1))?;
    let convs = [
        (192, Cv::k(1)),
        (224, Cv::rect(1, 3)),
        (256, Cv::rect(3, 1)),
    ];
    let b1 = chain(net, &format!("{p}.branch1"), x, &convs)?;
    residual(net, p, x, &[b0, b1], scale, relu, se)
}
