// splitk.wgsl for a conv feeding an SE block: adds the KS partial products of each output,
// applies the epilogue, writes y and also the squeeze's partial sums. A 256-thread workgroup
// covers PLANES planes (output channels of one image) with THREADS lanes each, over one chunk
// of SPAN pixels per plane (several chunks where H*W > SPAN, so that even one image spreads
// over many workgroups), and writes one partial sum per (image, chunk, channel):
// partials[(image * CHUNKS + chunk) * COUT + c].
{{bindings}}
const KS: u32 = {{ks}};
const SLAB: u32 = {{slab}};         // batch * COUT * HW
const HW: u32 = {{hw}};
const COUT: u32 = {{cout}};
const THREADS: u32 = {{threads}};   // lanes per plane, a power of two (32..256)
const PLANES: u32 = 256u / THREADS;
const CHUNKS: u32 = {{chunks}};     // chunks per plane
const SPAN: u32 = {{span}};         // pixels per chunk

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x % THREADS;
    let c = wg.x * PLANES + lid.x / THREADS;
    let img = wg.y;
    let p0 = wg.z * SPAN;
    var s = 0.0;
    if (c < COUT) {
        for (var p = p0 + lane; p < min(HW, p0 + SPAN); p = p + THREADS) {
            let o = (img * COUT + c) * HW + p;
            var v = 0.0;
            for (var k = 0u; k < KS; k = k + 1u) {
                v = v + part[k * SLAB + o];
            }
{{epilogue}}
            y[o] = v;
            s = s + v;
        }
    }
    red[lid.x] = s;
    workgroupBarrier();
    for (var w = THREADS / 2u; w > 0u; w = w / 2u) {
        if (lane < w) {
            red[lid.x] = red[lid.x] + red[lid.x + w];
        }
        workgroupBarrier();
    }
    if (lane == 0u && c < COUT) {
        partials[(img * CHUNKS + wg.z) * COUT + c] = red[lid.x];
    }
}
