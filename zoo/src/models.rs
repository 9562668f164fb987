//! The zoo's table of networks and the dispatch from a name to its builder.
//!
//! Parameter counts and GMACs are `SPEC.md`'s (measured from timm with 1000 classes); the
//! stride-on-1x1 ResNet-50s take the SENet paper's 3.86 / 3.87 GFLOPs (the parameters do not
//! depend on where the stride is), and BN-Inception's GMACs are the SENet paper's 2.03 / 2.04.

use excite_ir::{Graph, IrError};

use crate::net::Net;
use crate::resnet::ResNetCfg;
use crate::{
    BuildOptions, ModelInfo, bn_inception, efficientnet, inception_resnet, regnet, resnet, senet154,
};

const fn info(
    name: &'static str,
    description: &'static str,
    input_size: usize,
    se_blocks: usize,
    params: Option<u64>,
    gmacs: Option<f64>,
) -> ModelInfo {
    ModelInfo {
        name,
        description,
        input_size,
        se_blocks,
        expected_params: params,
        expected_gmacs: gmacs,
    }
}

static MODELS: [ModelInfo; 20] = [
    info(
        "resnet50",
        "ResNet-50 v1.5 (timm resnet50): bottleneck [3,4,6,3], stride on the 3x3",
        224,
        0,
        Some(25_557_032),
        Some(4.09),
    ),
    info(
        "se-resnet50",
        "SE-ResNet-50 v1.5 (timm seresnet50): SE r=16 on every bottleneck",
        224,
        16,
        Some(28_088_024),
        Some(4.09),
    ),
    info(
        "resnet50-v1",
        "ResNet-50 v1 (original paper, SENet's baseline): stride on the first 1x1",
        224,
        0,
        Some(25_557_032),
        Some(3.86),
    ),
    info(
        "se-resnet50-v1",
        "SE-ResNet-50 v1 (SENet release, timm legacy_seresnet50 placement): stride on the first 1x1",
        224,
        16,
        Some(28_088_024),
        Some(3.87),
    ),
    info(
        "resnet101",
        "ResNet-101 v1.5: bottleneck [3,4,23,3]",
        224,
        0,
        Some(44_549_160),
        Some(7.80),
    ),
    info(
        "se-resnet101",
        "SE-ResNet-101 v1.5: SE r=16 on every bottleneck",
        224,
        33,
        Some(49_326_872),
        Some(7.81),
    ),
    info(
        "resnet152",
        "ResNet-152 v1.5: bottleneck [3,8,36,3]",
        224,
        0,
        Some(60_192_808),
        Some(11.51),
    ),
    info(
        "se-resnet152",
        "SE-ResNet-152 v1.5: SE r=16 on every bottleneck",
        224,
        50,
        Some(66_821_848),
        Some(11.52),
    ),
    info(
        "resnext50-32x4d",
        "ResNeXt-50 32x4d: grouped 3x3 with 32 groups of 4 channels",
        224,
        0,
        Some(25_028_904),
        Some(4.23),
    ),
    info(
        "se-resnext50-32x4d",
        "SE-ResNeXt-50 32x4d: SE r=16 on every bottleneck",
        224,
        16,
        Some(27_559_896),
        Some(4.23),
    ),
    info(
        "resnext101-32x4d",
        "ResNeXt-101 32x4d: [3,4,23,3], 32 groups",
        224,
        0,
        Some(44_177_704),
        Some(7.97),
    ),
    info(
        "se-resnext101-32x4d",
        "SE-ResNeXt-101 32x4d: SE r=16 on every bottleneck",
        224,
        33,
        Some(48_955_416),
        Some(7.97),
    ),
    info(
        "senet154",
        "SENet-154 (timm legacy_senet154): SE-ResNeXt-152 64x4d, 3-conv stem, 3x3 projections, dropout 0.2",
        224,
        50,
        Some(115_088_984),
        Some(20.69),
    ),
    info(
        "inception-resnet-v2",
        "Inception-ResNet-v2 (timm inception_resnet_v2)",
        299,
        0,
        Some(55_843_464),
        Some(13.16),
    ),
    info(
        "se-inception-resnet-v2",
        "SE-Inception-ResNet-v2: SE r=16 on each residual branch before the scaled add",
        299,
        40,
        None,
        None,
    ),
    info(
        "bn-inception",
        "BN-Inception (Ioffe & Szegedy 2015; pretrainedmodels bninception)",
        224,
        0,
        None,
        Some(2.03),
    ),
    info(
        "se-bn-inception",
        "SE-BN-Inception: SE r=16 on each Inception module's output",
        224,
        10,
        None,
        Some(2.04),
    ),
    info(
        "efficientnet-b0",
        "EfficientNet-B0 (timm efficientnet_b0): SE with SiLU and sigmoid in every MBConv",
        224,
        16,
        Some(5_288_548),
        Some(0.39),
    ),
    info(
        "mobilenetv3-large",
        "MobileNetV3-Large 1.0 (timm mobilenetv3_large_100): SE with ReLU and hard-sigmoid, hard-swish",
        224,
        8,
        Some(5_483_032),
        Some(0.22),
    ),
    info(
        "regnety-800mf",
        "RegNetY-800MF (timm regnety_008): SE 0.25 in every block",
        224,
        14,
        Some(6_263_168),
        Some(0.80),
    ),
];

/// Every network the zoo builds, in a stable order.
pub fn list() -> &'static [ModelInfo] {
    &MODELS
}

fn resnet_cfg(
    layers: [usize; 4],
    groups: usize,
    base_width: usize,
    se: bool,
    stride_on_1x1: bool,
) -> ResNetCfg {
    ResNetCfg {
        layers,
        groups,
        base_width,
        se,
        stride_on_1x1,
    }
}

/// Builds `name` (a name from [`list`]) at `size`, unverified.
pub(crate) fn build_graph(name: &str, size: usize, opts: &BuildOptions) -> Result<Graph, IrError> {
    let (mut net, x) = Net::new(name, size, opts.seed)?;
    let k = opts.classes;
    const R50: [usize; 4] = [3, 4, 6, 3];
    const R101: [usize; 4] = [3, 4, 23, 3];
    const R152: [usize; 4] = [3, 8, 36, 3];
    let rn = |layers, se| resnet_cfg(layers, 1, 64, se, false);
    let rx = |layers, se| resnet_cfg(layers, 32, 4, se, false);
    let out = match name {
        "resnet50" => resnet::build(&mut net, x, rn(R50, false), k)?,
        "se-resnet50" => resnet::build(&mut net, x, rn(R50, true), k)?,
        "resnet50-v1" => resnet::build(&mut net, x, resnet_cfg(R50, 1, 64, false, true), k)?,
        "se-resnet50-v1" => resnet::build(&mut net, x, resnet_cfg(R50, 1, 64, true, true), k)?,
        "resnet101" => resnet::build(&mut net, x, rn(R101, false), k)?,
        "se-resnet101" => resnet::build(&mut net, x, rn(R101, true), k)?,
        "resnet152" => resnet::build(&mut net, x, rn(R152, false), k)?,
        "se-resnet152" => resnet::build(&mut net, x, rn(R152, true), k)?,
        "resnext50-32x4d" => resnet::build(&mut net, x, rx(R50, false), k)?,
        "se-resnext50-32x4d" => resnet::build(&mut net, x, rx(R50, true), k)?,
        "resnext101-32x4d" => resnet::build(&mut net, x, rx(R101, false), k)?,
        "se-resnext101-32x4d" => resnet::build(&mut net, x, rx(R101, true), k)?,
        "senet154" => senet154::build(&mut net, x, k)?,
        "inception-resnet-v2" => inception_resnet::build(&mut net, x, false, k)?,
        "se-inception-resnet-v2" => inception_resnet::build(&mut net, x, true, k)?,
        "bn-inception" => bn_inception::build(&mut net, x, false, k)?,
        "se-bn-inception" => bn_inception::build(&mut net, x, true, k)?,
        "efficientnet-b0" => efficientnet::efficientnet_b0(&mut net, x, k)?,
        "mobilenetv3-large" => efficientnet::mobilenetv3_large(&mut net, x, k)?,
        "regnety-800mf" => regnet::build(&mut net, x, &regnet::REGNETY_800MF, k)?,
        other => {
            return Err(IrError::node(
                other,
                "model",
                "the zoo has no builder for this name",
            ));
        }
    };
    net.finish(out)
}
