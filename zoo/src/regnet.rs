//! RegNetY (Radosavovic et al. 2020) as timm's `regnet.py` builds it; the zoo offers
//! RegNetY-800MF (`regnety_008`: w0 = 56, wa = 38.84, wm = 2.4, depth 14, group width 16,
//! SE 0.25).
//!
//! Per-block widths come from the quantized linear rule, computed as timm does (in `f32`, with
//! round-half-to-even like `torch.round`), then grouped into stages. A block is
//! `conv1 1x1 -> conv2 3x3 (groups of 16) -> SE -> conv3 1x1 (+ shortcut) -> ReLU`, each conv
//! with BN (and ReLU but the last). Unlike ResNet the SE sits after the grouped 3x3 and reduces
//! to `round(block input * 0.25)` channels.

use excite_ir::{IrError, ValueId};

use crate::net::{Act, Cv, Net, SE_RELU_SIGMOID, T};
use crate::resnet::RESIDUAL_GAMMA;

const EPS: f32 = 1e-5;

/// A RegNet design: the quantized-linear width rule's parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RegNetCfg {
    pub w0: usize,
    pub wa: f32,
    pub wm: f32,
    pub depth: usize,
    pub group_size: usize,
    pub se_ratio: f64,
    pub stem_width: usize,
}

pub(crate) const REGNETY_800MF: RegNetCfg = RegNetCfg {
    w0: 56,
    wa: 38.84,
    wm: 2.4,
    depth: 14,
    group_size: 16,
    se_ratio: 0.25,
    stem_width: 32,
};

/// `(width, depth)` of each stage: timm's `generate_regnet` followed by
/// `adjust_widths_groups_comp` (bottleneck ratio 1: widths rounded to the group size).
pub(crate) fn stages(cfg: &RegNetCfg) -> Vec<(usize, usize)> {
    let w0 = cfg.w0 as f32;
    let widths: Vec<usize> = (0..cfg.depth)
        .map(|i| {
            let cont = i as f32 * cfg.wa + w0;
            let exp = ((cont / w0).ln() / cfg.wm.ln()).round_ties_even();
            ((w0 * cfg.wm.powf(exp)) / 8.0).round_ties_even() as usize * 8
        })
        .collect();
    // torch.unique: widths grow with the block index, so runs of equal widths are the stages.
    let mut out: Vec<(usize, usize)> = Vec::new();
    for w in widths {
        match out.last_mut() {
            Some((last, n)) if *last == w => *n += 1,
            _ => out.push((w, 1)),
        }
    }
    // quantize_float(w, min(group_size, w)): the nearest multiple of the group width.
    out.into_iter()
        .map(|(w, d)| {
            let g = cfg.group_size.min(w) as f64;
            (((w as f64 / g).round_ties_even() * g) as usize, d)
        })
        .collect()
}

/// Builds the network on `x` and returns the logits.
pub(crate) fn build(
    net: &mut Net,
    x: T,
    cfg: &RegNetCfg,
    classes: usize,
) -> Result<ValueId, IrError> {
    let x = net.conv("stem.conv", x, cfg.stem_width, Cv::k(3).stride(2))?;
    let x = net.bn("stem.bn", x, EPS, 1.0)?;
    let mut x = net.act("stem.act", x, Act::Relu)?;
    for (si, (width, depth)) in stages(cfg).into_iter().enumerate() {
        for b in 0..depth {
            let stride = if b == 0 { 2 } else { 1 };
            x = block(
                net,
                &format!("s{}.b{}", si + 1, b + 1),
                x,
                width,
                stride,
                cfg,
            )?;
        }
    }
    let x = net.global_pool("head.global_pool", x)?;
    net.classifier(x, "head.fc", classes, false)
}

/// timm's `ConvNormAct`: `{p}.conv`, `{p}.bn`, and `{p}.act` unless `act` is false.
fn cna(
    net: &mut Net,
    p: &str,
    x: T,
    c: usize,
    cv: Cv,
    act: bool,
    gamma: f32,
) -> Result<T, IrError> {
    let y = net.conv(&format!("{p}.conv"), x, c, cv)?;
    let y = net.bn(&format!("{p}.bn"), y, EPS, gamma)?;
    if act {
        net.act(&format!("{p}.act"), y, Act::Relu)
    } else {
        Ok(y)
    }
}

fn block(
    net: &mut Net,
    p: &str,
    x: T,
    out: usize,
    stride: usize,
    cfg: &RegNetCfg,
) -> Result<T, IrError> {
    let groups = out / cfg.group_size.min(out);
    let y = cna(net, &format!("{p}.conv1"), x, out, Cv::k(1), true, 1.0)?;
    let y = cna(
        net,
        &format!("{p}.conv2"),
        y,
        out,
        Cv::k(3).stride(stride).groups(groups),
        true,
        1.0,
    )?;
    let rd = (x.c as f64 * cfg.se_ratio).round_ties_even() as usize;
    let y = net.se(&format!("{p}.se"), y, rd, SE_RELU_SIGMOID)?;
    let y = cna(
        net,
        &format!("{p}.conv3"),
        y,
        out,
        Cv::k(1),
        false,
        RESIDUAL_GAMMA,
    )?;
    let shortcut = if stride != 1 || x.c != out {
        cna(
            net,
            &format!("{p}.downsample"),
            x,
            out,
            Cv::k(1).stride(stride),
            false,
            1.0,
        )?
    } else {
        x
    };
    let y = net.add(&format!("{p}.add"), y, shortcut)?;
    net.act(&format!("{p}.act3"), y, Act::Relu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regnety_800mf_stages() {
        // timm's regnety_008: widths 64, 128, 320, 768 with depths 1, 3, 8, 2. The second
        // stage's raw width 136 / 16 = 8.5 rounds to even (128), not up (144).
        assert_eq!(
            stages(&REGNETY_800MF),
            vec![(64, 1), (128, 3), (320, 8), (768, 2)]
        );
    }
}
