// Winograd F(2x2, 3x3), output transform (winograd.rs): the 16 GEMMs wrote P[xi][m][t]; a lane
// per tile computes Y = A^T P A, the tile's 2x2 outputs, applies the conv's epilogue to each
// and writes them. Laid out like splitk_squeeze.wgsl: a 256-thread workgroup covers PLANES
// output planes (channels of one image) with THREADS lanes each, over one chunk of SPAN tiles,
// so that a conv feeding an SE block also writes the squeeze's partial sums (`squeeze`, one
// per image, chunk and channel).
{{bindings}}
const COUT: u32 = {{cout}};
const OH: u32 = {{oh}};
const OW: u32 = {{ow}};
const HW: u32 = OH * OW;
const TW: u32 = {{tw}};             // tiles per output row
const TPL: u32 = {{tpl}};           // tiles per image
const TP: u32 = {{tp}};             // columns of P (all images' tiles, padded)
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
            let t = img * TPL + tt;
            // A^T P (rows), then (A^T P) A (columns).
            var q: array<array<f32, 4>, 2>;
            for (var j = 0u; j < 4u; j = j + 1u) {
                let p0 = part[(j * COUT + c) * TP + t];
                let p1 = part[((4u + j) * COUT + c) * TP + t];
                let p2 = part[((8u + j) * COUT + c) * TP + t];
                let p3 = part[((12u + j) * COUT + c) * TP + t];
                q[0][j] = p0 + p1 + p2;
                q[1][j] = p1 - p2 - p3;
            }
            let oy = (tt / TW) * 2u;
            let ox = (tt % TW) * 2u;
            for (var r = 0u; r < 2u; r = r + 1u) {
                let row = array<f32, 2>(q[r][0] + q[r][1] + q[r][2], q[r][1] - q[r][2] - q[r][3]);
                for (var k = 0u; k < 2u; k = k + 1u) {
                    if (oy + r < OH && ox + k < OW) {
                        let o = (img * COUT + c) * HW + (oy + r) * OW + ox + k;
                        var v = row[k];
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
