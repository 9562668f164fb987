// Convolution as a tiled implicit GEMM: Y[m, n] = sum_k W[m, k] * X[k, n] per group, where
// m is the output channel, n = (batch, oy, ox) and k = (ci, ky, kx) gathers the input
// (im2col on the fly). A 256-thread workgroup computes a 64x64 tile, each thread 4 rows x 4
// columns in registers (its columns 16 apart with conv.rs's `strided_cols`, the default, so
// that each gathered load and each store of a warp covers 16 consecutive columns); K advances
// 16 at a time through workgroup memory. Weights are packed on the
// host as [group][K padded to 16][M padded to 64], so every weight load is an aligned vec4.
// When the output feeds an SE block, the `rowsum*` / `squeeze_*` holes (conv.rs) also write
// the squeeze's partial channel sums of each tile, one per image the tile meets.
{{bindings}}
const CIN: u32 = {{cin}};     // input channels (all groups)
const CG: u32 = {{cg}};       // input channels per group
const H: i32 = {{h}};
const W: i32 = {{w}};
const OH: u32 = {{oh}};
const OW: u32 = {{ow}};
const KH: u32 = {{kh}};
const KW: u32 = {{kw}};
const SH: u32 = {{sh}};
const SW: u32 = {{sw}};
const DH: u32 = {{dh}};
const DW: u32 = {{dw}};
const PT: i32 = {{pt}};
const PL: i32 = {{pl}};
const MG: u32 = {{mg}};       // output channels per group
const MPAD: u32 = {{mpad}};   // MG rounded up to 64
const K: u32 = {{k}};         // CG * KH * KW
const KPAD: u32 = {{kpad}};   // K rounded up to 16
const MQ: u32 = {{mq}};       // 64-row blocks per tile: each thread computes 4 * MQ rows
const NTOT: u32 = {{ntot}};   // batch * OH * OW
const HW: u32 = OH * OW;
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
    // The four output columns this thread gathers for the B tile never change with k, so
    // their image offset and window origin are decoded once (straight-line, per column).
{{gather_setup}}
    let kbeg = ks * KCH;
    let kend = min(KPAD, kbeg + KCH);
{{gemm_loop}}
{{rowsum_init}}
    // The epilogue, straight-line over the thread's outputs (conv.rs::store).
{{store}}
{{squeeze_end}}
}
