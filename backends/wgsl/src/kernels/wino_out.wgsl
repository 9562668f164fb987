// Winograd F(MxM, 3x3), output transform (winograd.rs): the ALPHA^2 products wrote P[xi][m][t];
// a lane per tile computes Y = A^T P A (straight-line, generated from A), the tile's M x M
// outputs, applies the conv's epilogue to each and writes them. Laid out like
// splitk_squeeze.wgsl: a 256-thread workgroup covers PLANES output planes (channels of one
// image) with THREADS lanes each, over one chunk of SPAN tiles, so that a conv feeding an SE
// block also writes the squeeze's partial sums (`squeeze`, one per image, chunk and channel).
{{bindings}}
const COUT: u32 = {{cout}};
const OH: u32 = {{oh}};
const OW: u32 = {{ow}};
const HW: u32 = OH * OW;
const M: u32 = {{m}};               // outputs per tile side
const TW: u32 = {{tw}};             // tiles per output row
const TPL: u32 = {{tpl}};           // tiles per image
const TP: u32 = {{tp}};             // columns of P (all images' tiles, padded)
const CT: u32 = COUT * TP;          // stride between the P of two xi
const THREADS: u32 = {{threads}};   // lanes per plane, a power of two (32..256)
const PLANES: u32 = 256u / THREADS;
const CHUNKS: u32 = {{chunks}};     // chunks per plane
const SPAN: u32 = {{span}};         // tiles per chunk

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x % THREADS;
    let c = wg.x * PLANES + lid.x / THREADS;
    let img = wg.y;
    let t0 = wg.z * SPAN;
    var s = 0.0;
    if (c < COUT) {
        for (var tt = t0 + lane; tt < min(TPL, t0 + SPAN); tt = tt + THREADS) {
            let at = c * TP + img * TPL + tt;
            var yt: array<array<f32, {{m}}>, {{m}}>;
{{transform}}
            let oy = (tt / TW) * M;
            let ox = (tt % TW) * M;
            for (var r = 0u; r < M; r = r + 1u) {
                for (var k = 0u; k < M; k = k + 1u) {
                    if (oy + r < OH && ox + k < OW) {
                        let o = (img * COUT + c) * HW + (oy + r) * OW + ox + k;
                        var v = yt[r][k];
{{epilogue}}
                        y[o] = v;
                        s = s + v;
                    }
                }
            }
        }
    }
{{squeeze}}
}
