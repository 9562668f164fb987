// SE block, dispatch 1 of 2 (when the producing conv did not already squeeze): the squeeze. One 64-thread workgroup per (channel, image) sums
// its H*W plane with a tree reduction in workgroup memory and writes the mean.
{{bindings}}
const C: u32 = {{c}};
const HW: u32 = {{hw}};

var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let plane = wg.y * C + wg.x;
    let t = lid.x;
    var s = 0.0;
    for (var i = t; i < HW; i = i + 64u) {
        s = s + x[plane * HW + i];
    }
    part[t] = s;
    workgroupBarrier();
    for (var w = 32u; w > 0u; w = w / 2u) {
        if (t < w) {
            part[t] = part[t] + part[t + w];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        partials[plane] = part[0] / f32(HW);
    }
}
