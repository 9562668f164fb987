//! BN-Inception (Ioffe & Szegedy 2015, "Batch Normalization") as Cadene's `pretrainedmodels`
//! `bninception` defines it (the Caffe release the SENet paper built SE-BN-Inception on).
//!
//! Convolutions have biases (Caffe style) and are followed by BatchNorm and ReLU; names are the
//! Caffe layer names (`inception_3a_1x1`, `inception_3a_1x1_bn`, `inception_3a_relu_1x1`). Ten
//! Inception modules concatenate up to four branches (1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3; pool
//! [-> 1x1 projection]); pools use ceil mode. The SE variant puts an SE module (`C / 16`) on
//! each module's concatenated output: 10 modules.

use excite_ir::{IrError, ValueId};

use crate::net::{Act, Cv, Net, Pl, SE_RELU_SIGMOID, T};

const EPS: f32 = 1e-5;

/// The pool branch of a module.
#[derive(Clone, Copy, Debug)]
enum PoolBranch {
    /// 3x3 average pool, stride 1, padding 1 (padding counted), then a 1x1 projection.
    Avg(usize),
    /// 3x3 max pool, stride 1, padding 1, then a 1x1 projection (module 5b).
    Max(usize),
    /// 3x3 max pool, stride 2, no projection (the grid-reduction modules 3c and 4e).
    MaxDown,
}

/// One Inception module: the 1x1 branch width, the 3x3 branch `(reduce, out)`, the double-3x3
/// branch `(reduce, out)`, the pool branch, and whether the module halves the grid.
#[derive(Clone, Copy, Debug)]
struct Module {
    name: &'static str,
    b1x1: Option<usize>,
    b3x3: (usize, usize),
    b3x3d: (usize, usize),
    pool: PoolBranch,
}

const MODULES: [Module; 10] = [
    m("3a", Some(64), (64, 64), (64, 96), PoolBranch::Avg(32)),
    m("3b", Some(64), (64, 96), (64, 96), PoolBranch::Avg(64)),
    m("3c", None, (128, 160), (64, 96), PoolBranch::MaxDown),
    m("4a", Some(224), (64, 96), (96, 128), PoolBranch::Avg(128)),
    m("4b", Some(192), (96, 128), (96, 128), PoolBranch::Avg(128)),
    m(
        "4c",
        Some(160),
        (128, 160),
        (128, 160),
        PoolBranch::Avg(128),
    ),
    m("4d", Some(96), (128, 192), (160, 192), PoolBranch::Avg(128)),
    m("4e", None, (128, 192), (192, 256), PoolBranch::MaxDown),
    m(
        "5a",
        Some(352),
        (192, 320),
        (160, 224),
        PoolBranch::Avg(128),
    ),
    m(
        "5b",
        Some(352),
        (192, 320),
        (192, 224),
        PoolBranch::Max(128),
    ),
];

const fn m(
    name: &'static str,
    b1x1: Option<usize>,
    b3x3: (usize, usize),
    b3x3d: (usize, usize),
    pool: PoolBranch,
) -> Module {
    Module {
        name,
        b1x1,
        b3x3,
        b3x3d,
        pool,
    }
}

/// Builds the network on `x` and returns the logits.
pub(crate) fn build(net: &mut Net, x: T, se: bool, classes: usize) -> Result<ValueId, IrError> {
    let x = cbr(net, "conv1", "7x7_s2", x, 64, Cv::k(7).stride(2))?;
    let x = net.pool("pool1_3x3_s2", x, Pl::max(3, 2).ceil())?;
    let x = cbr(net, "conv2", "3x3_reduce", x, 64, Cv::k(1))?;
    let x = cbr(net, "conv2", "3x3", x, 192, Cv::k(3))?;
    let mut x = net.pool("pool2_3x3_s2", x, Pl::max(3, 2).ceil())?;
    for module in MODULES {
        x = inception(net, module, x, se)?;
    }
    let x = net.global_pool("global_pool", x)?;
    net.classifier(x, "last_linear", classes, false)
}

/// Caffe's conv (with bias) + BN + ReLU, named `{m}_{s}`, `{m}_{s}_bn`, `{m}_relu_{s}`.
fn cbr(net: &mut Net, m: &str, s: &str, x: T, c: usize, cv: Cv) -> Result<T, IrError> {
    let y = net.conv(&format!("{m}_{s}"), x, c, cv.bias())?;
    let y = net.bn(&format!("{m}_{s}_bn"), y, EPS, 1.0)?;
    net.act(&format!("{m}_relu_{s}"), y, Act::Relu)
}

fn inception(net: &mut Net, md: Module, x: T, se: bool) -> Result<T, IrError> {
    let p = format!("inception_{}", md.name);
    let stride = if matches!(md.pool, PoolBranch::MaxDown) {
        2
    } else {
        1
    };
    let mut branches = Vec::with_capacity(4);
    if let Some(c) = md.b1x1 {
        branches.push(cbr(net, &p, "1x1", x, c, Cv::k(1))?);
    }
    let y = cbr(net, &p, "3x3_reduce", x, md.b3x3.0, Cv::k(1))?;
    branches.push(cbr(net, &p, "3x3", y, md.b3x3.1, Cv::k(3).stride(stride))?);
    let y = cbr(net, &p, "double_3x3_reduce", x, md.b3x3d.0, Cv::k(1))?;
    let y = cbr(net, &p, "double_3x3_1", y, md.b3x3d.1, Cv::k(3))?;
    branches.push(cbr(
        net,
        &p,
        "double_3x3_2",
        y,
        md.b3x3d.1,
        Cv::k(3).stride(stride),
    )?);
    let pool = format!("{p}_pool");
    branches.push(match md.pool {
        PoolBranch::Avg(c) => {
            let y = net.pool(&pool, x, Pl::avg(3, 1).pad(1).ceil().count_pad())?;
            cbr(net, &p, "pool_proj", y, c, Cv::k(1))?
        }
        PoolBranch::Max(c) => {
            let y = net.pool(&pool, x, Pl::max(3, 1).pad(1).ceil())?;
            cbr(net, &p, "pool_proj", y, c, Cv::k(1))?
        }
        PoolBranch::MaxDown => net.pool(&pool, x, Pl::max(3, 2).ceil())?,
    });
    let y = net.concat(&format!("{p}_output"), &branches)?;
    if se {
        net.se(&format!("{p}_se"), y, y.c / 16, SE_RELU_SIGMOID)
    } else {
        Ok(y)
    }
}
