//! Graph metrics that the CLI reports before and after optimisation: kernels launched, SE
//! blocks fused, and an estimate of the bytes a run moves through memory.
//!
//! The model behind [`bytes_moved`]: every kernel reads each of its inputs once from memory and
//! writes each of its outputs once, all `f32` (4 bytes an element), weights included, with the
//! symbolic batch taken as `batch`. Views (`Identity`, `Dropout`, `Flatten`, `Reshape`) move
//! nothing: they alias their input. Caches, re-reads inside a kernel (a convolution reads its
//! input about `kH*kW` times) and workspace are not modelled; the number compares graphs of
//! the same network, which is what fusion changes: a fused kernel keeps its intermediates in
//! registers, so their write and read disappear from the sum.

use excite_ir::{Graph, Op, ValueId};

/// True for ops that only alias their input, with no kernel behind them.
pub fn is_view(op: &Op) -> bool {
    matches!(
        op,
        Op::Identity | Op::Dropout | Op::Flatten { .. } | Op::Reshape { .. }
    )
}

/// Number of kernels a run launches: every node except views.
pub fn kernel_count(g: &Graph) -> usize {
    g.node_ids().filter(|&id| !is_view(&g.node(id).op)).count()
}

/// Number of fused `SeBlock` nodes.
pub fn se_blocks(g: &Graph) -> usize {
    g.node_ids()
        .filter(|&id| matches!(g.node(id).op, Op::SeBlock(_)))
        .count()
}

/// Estimated bytes read and written by one run at batch size `batch` (see the module docs).
/// Values without a type (a graph not verified since its last edit) count as zero, except
/// weights, whose size is always known.
pub fn bytes_moved(g: &Graph, batch: usize) -> u64 {
    let bytes = |v: ValueId| -> u64 {
        let elems = match (g.value(v).weight(), g.ty_of(v)) {
            (Some(t), _) => Some(t.numel()),
            (None, Some(ty)) => ty.shape.numel_with(batch),
            (None, None) => None,
        };
        elems.map_or(0, |n| (n as u64).saturating_mul(4))
    };
    g.node_ids()
        .map(|id| g.node(id))
        .filter(|n| !is_view(&n.op))
        .flat_map(|n| n.inputs.iter().chain(&n.outputs))
        .fold(0u64, |acc, &v| acc.saturating_add(bytes(v)))
}

#[cfg(test)]
mod tests {
    use excite_ir::text::{WeightStore, parse_with_placeholder_weights};
    use excite_ir::verify::verify;

    use super::*;

    fn graph(src: &str) -> Graph {
        let mut g = parse_with_placeholder_weights(src, &WeightStore::new()).expect("parses");
        verify(&mut g).expect("verifies");
        g
    }

    #[test]
    fn views_are_free_and_kernels_count_every_operand() {
        let g = graph(
            r"graph g {
  input x: f32[N,8,4,4]
  weight w: f32[8,8,3,3]
  weight b: f32[8]
  node conv = Conv(x, w, b) {pads=[1,1,1,1]} -> c
  node relu = Relu(c) -> r
  node flat = Flatten(r) {axis=1} -> f
  node same = Identity(f) -> y
  output y
}",
        );
        assert_eq!(kernel_count(&g), 2);
        assert_eq!(se_blocks(&g), 0);
        // Batch 2: conv reads x (2*8*4*4 = 256), w (576), b (8) and writes 256; relu reads and
        // writes 256 each. (256 + 576 + 8 + 256 + 512) * 4 bytes.
        assert_eq!(bytes_moved(&g, 2), 1608 * 4);
        // Batch 1 halves the activations only: (128 + 576 + 8 + 128 + 256) * 4.
        assert_eq!(bytes_moved(&g, 1), 1096 * 4);
    }

    #[test]
    fn an_se_block_is_one_kernel() {
        let g = graph(
            r"graph g {
  input x: f32[N,8,4,4]
  weight w1: f32[2,8,1,1]
  weight w2: f32[8,2,1,1]
  node se = SeBlock(x, w1, w2) {act=Relu, gate=Sigmoid} -> y
  output y
}",
        );
        assert_eq!((kernel_count(&g), se_blocks(&g)), (1, 1));
        // x and y (128 each at batch 1) plus 16 + 16 weight elements.
        assert_eq!(bytes_moved(&g, 1), (128 + 16 + 16 + 128) * 4);
    }
}
