// A pointwise convolution whose output feeds an SE block: conv1x1.wgsl plus the SE squeeze.
// Column tiles never straddle images (each image has TILES tiles of 64 pixels, the last one
// partly masked), so each workgroup can also sum its 64 pixels of every output channel it
// computes and write that partial sum; the SE kernel adds the TILES partials of a channel.
// This saves the SE block a whole pass over its input (WGSL has no float atomics, hence
// partials rather than one accumulated sum).
{{bindings}}
const CIN: u32 = {{cin}};     // input channels (all groups)
const CG: u32 = {{cg}};       // input channels per group
const HW: u32 = {{hw}};
const MG: u32 = {{mg}};       // output channels per group
const MPAD: u32 = {{mpad}};   // MG rounded up to 64
const K: u32 = {{k}};         // CG
const KPAD: u32 = {{kpad}};   // K rounded up to 16
const MQ: u32 = {{mq}};       // 64-row blocks per tile: each thread computes 4 * MQ rows
const NTOT: u32 = {{ntot}};   // batch * OH * OW
const COUT: u32 = {{cout}};
const TILES: u32 = {{tiles}}; // 64-pixel column tiles per image

var<workgroup> As: array<vec4<f32>, {{as_len}}>; // [16 k][MQ][16 m-quads]
var<workgroup> Bs: array<vec4<f32>, 256>; // [16 k][16 n-quads]
var<workgroup> red: array<f32, 1024>;     // [64 m][16 tx] row sums

// Up to four consecutive pixels of one image starting at x index `i`, `left` of them in range
// (aligned vec4 loads when H*W is a multiple of 4, masked scalar loads otherwise).
fn load_quad(i: u32, left: u32) -> vec4<f32> {
{{load_quad}}
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tx = lid.x;
    let ty = lid.y;
    let tid = ty * 16u + tx;
    let g = wg.z;
    let m0 = wg.y * 64u * MQ;
    let img = wg.x / TILES;
    let p0 = (wg.x % TILES) * 64u;
    var acc: array<vec4<f32>, {{acc_len}}>; // [MQ * 4 rows] x 4 columns
    let lk = tid / 16u;
    let lq = tid % 16u;
    // This thread's four B columns: one aligned quad of one image, fixed for every k.
    let pq = p0 + lq * 4u;
    let live = pq < HW;
    let qbase = (img * CIN + g * CG) * HW + pq;
    let kbeg = 0u;
    let kend = KPAD;
{{gemm_loop}}
    for (var i = 0u; i < 4u; i = i + 1u) {
        let m = m0 + ty * 4u + i;
        var rowsum = 0.0;
        let c = g * MG + m;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let p = p0 + tx * 4u + j;
            if (m >= MG || p >= HW) {
                continue;
            }
            let o = (img * COUT + c) * HW + p;
            var v = acc[i][j];
{{epilogue}}
            y[o] = v;
            rowsum = rowsum + v;
        }
        red[(ty * 4u + i) * 16u + tx] = rowsum;
    }
    workgroupBarrier();
    if (tid < 64u && m0 + tid < MG) {
        var s = 0.0;
        for (var t = 0u; t < 16u; t = t + 1u) {
            s = s + red[tid * 16u + t];
        }
        partials[(img * TILES + wg.x % TILES) * COUT + g * MG + m0 + tid] = s;
    }
}
