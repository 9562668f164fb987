// splitk.wgsl by quads (H*W a multiple of 4, so four consecutive outputs share a channel):
// one thread adds the KS partial products of four outputs as vec4s, applies the epilogue to
// each and stores them as one vec4.
{{bindings}}
const KS: u32 = {{ks}};
const SLAB4: u32 = {{slab4}};   // batch * COUT * HW / 4
const HW: u32 = {{hw}};
const COUT: u32 = {{cout}};

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x + gid.y * {{row}};
    if (q >= SLAB4) {
        return;
    }
    let c = ((q * 4u) / HW) % COUT;
    var t = vec4<f32>(0.0);
    for (var k = 0u; k < KS; k = k + 1u) {
        t = t + part[k * SLAB4 + q];
    }
{{lanes}}
    y[q] = t;
}
