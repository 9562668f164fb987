//! ResNet, ResNeXt and their SE variants, as timm's `resnet.py` defines them (`resnet50`,
//! `seresnet50`, `resnext50_32x4d`, `seresnext50_32x4d`, ...).
//!
//! A bottleneck is `conv1 1x1 -> bn1 -> relu -> conv2 3x3 (grouped) -> bn2 -> relu -> conv3 1x1
//! -> bn3 [-> se] (+ shortcut) -> relu`, the shortcut a strided 1x1 conv + BN where the shape
//! changes. v1.5 (timm, torchvision) strides the 3x3; v1 (the original ResNet, and the SENet
//! paper's 3.86 GFLOPs) strides the first 1x1. The SE module has `C / 16` reduced channels and
//! biased 1x1 FCs.

use excite_ir::{IrError, ValueId};

use crate::net::{Act, Cv, Net, Pl, SE_RELU_SIGMOID, T, make_divisible};

/// BatchNorm epsilon (PyTorch's default).
const EPS: f32 = 1e-5;
/// Scale of the last BatchNorm's gamma on each residual branch, so that fifty blocks of
/// random weights keep the residual stream's magnitude in check.
pub(crate) const RESIDUAL_GAMMA: f32 = 0.2;

/// One ResNet-family configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResNetCfg {
    pub layers: [usize; 4],
    /// Groups of the 3x3 (cardinality); 1 for ResNet.
    pub groups: usize,
    /// Width per group at the first stage (64 for ResNet, 4 for ResNeXt 32x4d).
    pub base_width: usize,
    pub se: bool,
    /// Stride on the first 1x1 (v1) instead of the 3x3 (v1.5).
    pub stride_on_1x1: bool,
}

/// Builds the network on `x` and returns the logits.
pub(crate) fn build(
    net: &mut Net,
    x: T,
    cfg: ResNetCfg,
    classes: usize,
) -> Result<ValueId, IrError> {
    let x = net.conv("conv1", x, 64, Cv::k(7).stride(2))?;
    let x = net.bn("bn1", x, EPS, 1.0)?;
    let x = net.act("act1", x, Act::Relu)?;
    let mut x = net.pool("maxpool", x, Pl::max(3, 2).pad(1))?;
    for (stage, &blocks) in cfg.layers.iter().enumerate() {
        let planes = 64 << stage;
        for b in 0..blocks {
            let stride = if b == 0 && stage > 0 { 2 } else { 1 };
            x = bottleneck(
                net,
                &format!("layer{}.{b}", stage + 1),
                x,
                planes,
                stride,
                cfg,
            )?;
        }
    }
    let x = net.global_pool("global_pool", x)?;
    net.classifier(x, "fc", classes, false)
}

fn bottleneck(
    net: &mut Net,
    p: &str,
    x: T,
    planes: usize,
    stride: usize,
    cfg: ResNetCfg,
) -> Result<T, IrError> {
    let width = planes * cfg.base_width / 64 * cfg.groups;
    let out = planes * 4;
    let (s1, s2) = if cfg.stride_on_1x1 {
        (stride, 1)
    } else {
        (1, stride)
    };
    let y = net.conv(&format!("{p}.conv1"), x, width, Cv::k(1).stride(s1))?;
    let y = net.bn(&format!("{p}.bn1"), y, EPS, 1.0)?;
    let y = net.act(&format!("{p}.act1"), y, Act::Relu)?;
    let y = net.conv(
        &format!("{p}.conv2"),
        y,
        width,
        Cv::k(3).stride(s2).groups(cfg.groups),
    )?;
    let y = net.bn(&format!("{p}.bn2"), y, EPS, 1.0)?;
    let y = net.act(&format!("{p}.act2"), y, Act::Relu)?;
    let y = net.conv(&format!("{p}.conv3"), y, out, Cv::k(1))?;
    let mut y = net.bn(&format!("{p}.bn3"), y, EPS, RESIDUAL_GAMMA)?;
    if cfg.se {
        // timm's SEModule: rd = make_divisible(C / 16, 8, round_limit = 0).
        let rd = make_divisible(out as f64 / 16.0, 8, 0.0);
        y = net.se(&format!("{p}.se"), y, rd, SE_RELU_SIGMOID)?;
    }
    let shortcut = if stride != 1 || x.c != out {
        let s = net.conv(
            &format!("{p}.downsample.0"),
            x,
            out,
            Cv::k(1).stride(stride),
        )?;
        net.bn(&format!("{p}.downsample.1"), s, EPS, 1.0)?
    } else {
        x
    };
    let y = net.add(&format!("{p}.add"), y, shortcut)?;
    net.act(&format!("{p}.act3"), y, Act::Relu)
}
