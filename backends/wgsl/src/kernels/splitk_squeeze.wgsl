// splitk.wgsl for a conv feeding an SE block: one 256-thread workgroup per (output channel,
// image) adds the KS partial products of its plane, applies the epilogue, writes the plane and
// also its sum (the SE squeeze, one partial per channel and image).
{{bindings}}
const KS: u32 = {{ks}};
const SLAB: u32 = {{slab}};   // batch * COUT * HW
const HW: u32 = {{hw}};
const COUT: u32 = {{cout}};

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wg.x;
    let img = wg.y;
    let t = lid.x;
    var s = 0.0;
    for (var p = t; p < HW; p = p + 256u) {
        let o = (img * COUT + c) * HW + p;
        var v = 0.0;
        for (var k = 0u; k < KS; k = k + 1u) {
            v = v + part[k * SLAB + o];
        }
{{epilogue}}
        y[o] = v;
        s = s + v;
    }
    red[t] = s;
    workgroupBarrier();
    for (var w = 128u; w > 0u; w = w / 2u) {
        if (t < w) {
            red[t] = red[t] + red[t + w];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        partials[img * COUT + c] = red[0];
    }
}
