// SE block, dispatch 2 of 2: the gates, then the scale. One 256-thread workgroup per (block of
// CB channels, image) computes its channels' gates g[c] = gate(W2[c] . z[n] + b2[c]) with
// 256 / CB lanes per channel (coalesced reads of W2's row c, summed in workgroup memory), then
// (the `finish` hole, se_scale_apply.wgsl) writes y = post_act(x * g + r) over those channels'
// planes, WIDTH elements per access. (When a conv applies the gates instead, se_gates.wgsl
// computes them one thread per gate.)
{{bindings}}
const C: u32 = {{c}};
const CR: u32 = {{cr}};
const HW: u32 = {{hw}};
const CB: u32 = {{cb}};       // a power of two, at most 16
const LANES: u32 = 256u / CB;
const WIDTH: u32 = {{width}}; // 4 when HW is a multiple of 4 (vec4 accesses), else 1

var<workgroup> red: array<f32, 256>;
var<workgroup> gs: array<f32, CB>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    let n = wg.y;
    let c0 = wg.x * CB;
    let cb = t / LANES;
    let lane = t % LANES;
    let c = min(c0 + cb, C - 1u);
    var acc = 0.0;
    for (var j = lane; j < CR; j = j + LANES) {
        acc = acc + w2[c * CR + j] * z[n * CR + j];
    }
{{sum}}
    if (lane == 0u) {
        let v = red[t] + {{b2}};
        gs[cb] = {{gate}};
    }
    workgroupBarrier();
{{finish}}
}
