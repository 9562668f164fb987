// The second half of a split-K convolution: the GEMM kernel wrote KS partial products of every
// output (slab s at s * SLAB); one thread per output element adds them in a fixed order, applies
// the conv's epilogue and writes y. Memory-bound and fully parallel.
{{bindings}}
const KS: u32 = {{ks}};
const SLAB: u32 = {{slab}};   // batch * COUT * HW
const HW: u32 = {{hw}};
const COUT: u32 = {{cout}};

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x + gid.y * {{row}};
    if (o >= SLAB) {
        return;
    }
    let c = (o / HW) % COUT;
    var v = 0.0;
    for (var k = 0u; k < KS; k = k + 1u) {
        v = v + part[k * SLAB + o];
    }
{{epilogue}}
    y[o] = v;
}
