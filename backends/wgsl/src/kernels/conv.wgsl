// Convolution as a tiled implicit GEMM: Y[m, n] = sum_k W[m, k] * X[k, n] per group, where
// m is the output channel, n = (batch, oy, ox) and k = (ci, ky, kx) gathers the input
// (im2col on the fly). A 256-thread workgroup computes a 64x64 tile, each thread a 4x4 block
// in registers; K advances 16 at a time through workgroup memory. Weights are packed on the
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
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tx = lid.x;
    let ty = lid.y;
    let tid = ty * 16u + tx;
    let g = wg.z / KS;
    let ks = wg.z % KS;
    let m0 = wg.y * 64u * MQ;
    let n0 = wg.x * 64u;
    var acc: array<vec4<f32>, {{acc_len}}>; // [MQ * 4 rows] x 4 columns
    let lk = tid / 16u;
    let lq = tid % 16u;
    // The four output columns this thread gathers for the B tile never change with k, so
    // their image offset and window origin are decoded once.
    var xbase: array<u32, 4>;
    var iy0: array<i32, 4>;
    var ix0: array<i32, 4>;
    var live: array<bool, 4>;
    for (var j = 0u; j < 4u; j = j + 1u) {
        let n = n0 + lq * 4u + j;
        live[j] = n < NTOT;
        let ox = n % OW;
        let oy = (n / OW) % OH;
        let b = n / (OW * OH);
        xbase[j] = (b * CIN + g * CG) * u32(H * W);
        iy0[j] = i32(oy * SH) - PT;
        ix0[j] = i32(ox * SW) - PL;
    }
    for (var k0 = ks * KCH; k0 < min(KPAD, ks * KCH + KCH); k0 = k0 + 16u) {
        let wrow = ((g * KPAD + k0 + lk) * MPAD + m0) / 4u + lq;
{{load_a}}
        let kb = k0 + lk;
        let kx = kb % KW;
        let ky = (kb / KW) % KH;
        let ci = kb / (KW * KH);
        var bv = vec4<f32>(0.0);
        for (var j = 0u; j < 4u; j = j + 1u) {
            let iy = iy0[j] + i32(ky * DH);
            let ix = ix0[j] + i32(kx * DW);
            if (kb < K && live[j] && iy >= 0 && iy < H && ix >= 0 && ix < W) {
                bv[j] = x[xbase[j] + (ci * u32(H) + u32(iy)) * u32(W) + u32(ix)];
            }
        }
        Bs[tid] = bv;
{{gemm_step}}
    }
{{rowsum_init}}
    for (var r = 0u; r < 4u * MQ; r = r + 1u) {
        let i = r % 4u;
        let m = m0 + (r / 4u) * 64u + ty * 4u + i;
        if (m >= MG) {
            continue;
        }
        let c = g * MG + m;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let n = n0 + tx * 4u + j;
            if (n >= NTOT) {
                continue;
            }
            let o = ((n / HW) * COUT + c) * HW + n % HW;
            var v = acc[r][j];
{{epilogue}}
            y[{{ysplit}}o] = v;
{{rowsum}}
        }
    }
{{squeeze_end}}
}
