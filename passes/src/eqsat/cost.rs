//! The cost model for extraction: kernels launched, then bytes moved.
//!
//! Each e-node standing for a kernel costs [`KERNEL`] plus the bytes it reads and writes
//! (f32 elements with the batch taken as 1; weights included). The SE block reads `x` twice,
//! once to pool it and once to scale it, as the unfused ops do. Partial e-nodes (`se-gate`, and
//! a `fconv` with an empty epilogue, which only exist to compose rules) cost infinity, so they
//! are never extracted. A FusedConv's residual read costs one byte more than the same read by
//! an SE block: when an Add joins an SE output and a conv output, both kernels could absorb
//! it at the same cost, and the SE block absorbing it is the form the backends expect.
//!
//! The graph is a DAG with heavy sharing, so summing child costs as a tree would count a
//! shared value once per path (2^50 times in a 50-block ResNet). A node's cost instead
//! includes a child's cost only when that child is unshared: a shared value is computed once
//! whatever is chosen above it, so it adds the same to every alternative and can be left out.
//! Unshared values are read by exactly one node, so every alternative that reads them pays for
//! them once: the sums stay exact and the choice is the DAG-optimal one for these rules.

use egg::{CostFunction, Id};

use super::analysis::{SeGraph, is_none};
use super::lang::SeLang;

/// What one kernel launch costs, in bytes: larger than any tensor, so fewer kernels always win.
pub const KERNEL: u64 = 1 << 40;

/// Cost of an e-node that must never be extracted.
pub const INFINITE: u64 = u64::MAX;

/// Kernels times [`KERNEL`] plus bytes moved; see the module docs.
#[derive(Debug)]
pub struct KernelCost<'a> {
    egraph: &'a SeGraph,
}

impl<'a> KernelCost<'a> {
    pub fn new(egraph: &'a SeGraph) -> Self {
        KernelCost { egraph }
    }

    fn bytes(&self, id: Id) -> u64 {
        self.egraph[id].data.numel() * 4
    }

    /// True for the partial e-nodes that exist only to compose rules.
    fn is_partial(&self, enode: &SeLang) -> bool {
        match enode {
            SeLang::SeGate(_) => true,
            SeLang::FusedConv(c) => [c[2], c[3], c[7]].iter().all(|&k| is_none(self.egraph, k)),
            _ => false,
        }
    }

    /// Bytes the kernel reads and writes.
    fn traffic(&self, enode: &SeLang) -> u64 {
        let out = enode
            .name_child()
            .and_then(|n| super::analysis::node_info(self.egraph, n))
            .map_or(0, |i| i.numel() * 4);
        let reads: u64 = enode.value_children().iter().map(|&c| self.bytes(c)).sum();
        let extra = match enode {
            // The squeeze pass reads x once more.
            SeLang::SeBlock(c) => self.bytes(c[4]),
            SeLang::FusedConv(c) if !is_none(self.egraph, c[7]) => 1,
            _ => 0,
        };
        out + reads + extra
    }
}

impl CostFunction<SeLang> for KernelCost<'_> {
    type Cost = u64;

    fn cost<C>(&mut self, enode: &SeLang, mut costs: C) -> u64
    where
        C: FnMut(Id) -> u64,
    {
        if enode.name_child().is_none() {
            return 0;
        }
        if self.is_partial(enode) {
            return INFINITE;
        }
        let mut total = KERNEL.saturating_add(self.traffic(enode));
        for &c in enode.value_children() {
            if !self.egraph[c].data.shared {
                total = total.saturating_add(costs(c));
            }
        }
        total
    }
}
