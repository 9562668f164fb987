// Pointwise (1x1, stride 1, no padding) convolution as a tiled GEMM: Y[m, n] = sum_k W[m, k] X[k, n]
// with k the input channel and n = (batch, pixel). The same 64x64 tile and 4x4 register blocks
// as conv.wgsl, but the B tile is read straight from x as aligned vec4s (H*W is a multiple of 4,
// so four consecutive columns never straddle two images).
//
// Optional parts, filled by conv.rs (empty otherwise):
// - an SE block's scale, left to this conv: the `prologue` hole applies that block's gate,
//   residual and act to each loaded quad before it enters workgroup memory, and the first row
//   of workgroups also stores the result (the SE output): the SE block needs no scale pass;
// - the SE squeeze of this conv's output (`rowsum*`, `squeeze_*`, shared with conv.wgsl): per
//   tile and output channel, the sums of the tile's columns in each image it meets, written as
//   partials[(tile * PARTS + part) * COUT + c]. Unlike conv1x1_squeeze.wgsl (tiles per image),
//   no tile computes padding columns.
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
const KS: u32 = {{ks}};       // K split over this many workgroups (1: no split)
const KCH: u32 = {{kch}};     // K per split, a multiple of 16

var<workgroup> As: array<vec4<f32>, {{as_len}}>; // [16 k][MQ][16 m-quads]
var<workgroup> Bs: array<vec4<f32>, 256>; // [16 k][16 n-quads]
{{squeeze_decl}}
{{se_fn}}
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
{{se_head}}
    let tx = lid.x;
    let ty = lid.y;
    let tid = ty * 16u + tx;
    let g = wz / KS;
    let ks = wz % KS;
    let m0 = wg.y * 64u * MQ;
    let n0 = wg.x * 64u;
    var acc: array<vec4<f32>, {{acc_len}}>; // [MQ * 4 rows] x 4 columns
    let lk = tid / 16u;
    let lq = tid % 16u;
    // This thread's four B columns: one aligned quad of one image, fixed for every k.
    let nq = n0 + lq * 4u;
    let live = nq < NTOT;
    let qbase = ((nq / HW) * CIN + g * CG) * HW + nq % HW;
    let kbeg = ks * KCH;
    let kend = min(KPAD, kbeg + KCH);
{{gemm_loop}}
{{rowsum_init}}
    // The epilogue, straight-line over the thread's outputs (conv.rs::store).
{{store}}
{{squeeze_end}}
}
