// The second half of a split-K convolution: the GEMM kernel wrote KS partial products of every
// output (slab s at s * SLAB outputs); one thread per unit of PER outputs (1, or 4 as one vec4
// where H*W is a multiple of 4, so a unit never straddles two planes) adds them in a fixed
// order, applies the conv's epilogue to each output and writes the unit. Memory-bound and
// fully parallel.
{{bindings}}
const KS: u32 = {{ks}};
const PER: u32 = {{per}};       // outputs per unit
const SLABU: u32 = {{slabu}};   // units per slab: batch * COUT * HW / PER
const HW: u32 = {{hw}};
const COUT: u32 = {{cout}};

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x + gid.y * {{row}};
    if (q >= SLABU) {
        return;
    }
    let c = ((q * PER) / HW) % COUT;
    var t = {{unit}}(0.0);
    for (var k = 0u; k < KS; k = k + 1u) {
        t = t + part[k * SLABU + q];
    }
{{apply}}
    y[q] = t;
}
