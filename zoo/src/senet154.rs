//! SENet-154, as timm's `legacy_senet154` (Cadene's port of the original Caffe release).
//!
//! An SE-ResNeXt-152 64x4d with the original release's quirks: a stem of three 3x3 convs
//! (64, 64, 128 channels) and a ceil-mode max pool without padding; bottlenecks whose first 1x1
//! is half the grouped 3x3's width (`planes * 2` then `planes * 4`, 64 groups); 3x3 stride-2
//! projection shortcuts after the first stage; SE with `C / 16` on every block; dropout 0.2
//! before `last_linear`. Layer names follow that model (`layer0.conv1`, `layer1.0.se_module`).

use excite_ir::{IrError, ValueId};

use crate::net::{Act, Cv, Net, Pl, SE_RELU_SIGMOID, T};
use crate::resnet::RESIDUAL_GAMMA;

const EPS: f32 = 1e-5;
const LAYERS: [usize; 4] = [3, 8, 36, 3];
const GROUPS: usize = 64;

/// Builds SENet-154 on `x` and returns the logits.
pub(crate) fn build(net: &mut Net, x: T, classes: usize) -> Result<ValueId, IrError> {
    let mut x = x;
    for (i, (c, stride)) in [(64, 2), (64, 1), (128, 1)].into_iter().enumerate() {
        let n = i + 1;
        x = net.conv(&format!("layer0.conv{n}"), x, c, Cv::k(3).stride(stride))?;
        x = net.bn(&format!("layer0.bn{n}"), x, EPS, 1.0)?;
        x = net.act(&format!("layer0.relu{n}"), x, Act::Relu)?;
    }
    let mut x = net.pool("pool0", x, Pl::max(3, 2).ceil())?;
    for (stage, &blocks) in LAYERS.iter().enumerate() {
        let planes = 64 << stage;
        for b in 0..blocks {
            let stride = if b == 0 && stage > 0 { 2 } else { 1 };
            // The projection is a 3x3 (padding 1) after the first stage, a 1x1 in it.
            let proj_k = if stage == 0 { 1 } else { 3 };
            x = bottleneck(
                net,
                &format!("layer{}.{b}", stage + 1),
                x,
                planes,
                stride,
                proj_k,
            )?;
        }
    }
    let x = net.global_pool("global_pool", x)?;
    net.classifier(x, "last_linear", classes, true)
}

fn bottleneck(
    net: &mut Net,
    p: &str,
    x: T,
    planes: usize,
    stride: usize,
    proj_k: usize,
) -> Result<T, IrError> {
    let out = planes * 4;
    let y = net.conv(&format!("{p}.conv1"), x, planes * 2, Cv::k(1))?;
    let y = net.bn(&format!("{p}.bn1"), y, EPS, 1.0)?;
    let y = net.act(&format!("{p}.relu1"), y, Act::Relu)?;
    let y = net.conv(
        &format!("{p}.conv2"),
        y,
        planes * 4,
        Cv::k(3).stride(stride).groups(GROUPS),
    )?;
    let y = net.bn(&format!("{p}.bn2"), y, EPS, 1.0)?;
    let y = net.act(&format!("{p}.relu2"), y, Act::Relu)?;
    let y = net.conv(&format!("{p}.conv3"), y, out, Cv::k(1))?;
    let y = net.bn(&format!("{p}.bn3"), y, EPS, RESIDUAL_GAMMA)?;
    let y = net.se(&format!("{p}.se_module"), y, out / 16, SE_RELU_SIGMOID)?;
    let shortcut = if stride != 1 || x.c != out {
        let s = net.conv(
            &format!("{p}.downsample.0"),
            x,
            out,
            Cv::k(proj_k).stride(stride),
        )?;
        net.bn(&format!("{p}.downsample.1"), s, EPS, 1.0)?
    } else {
        x
    };
    let y = net.add(&format!("{p}.add"), y, shortcut)?;
    net.act(&format!("{p}.relu"), y, Act::Relu)
}
