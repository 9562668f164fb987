// Winograd F(MxM, 3x3), input transform (winograd.rs): one thread per (input channel c, tile t)
// gathers the tile's ALPHA x ALPHA input patch (ALPHA = M + 2, zero outside the image),
// computes V = B^T d B (straight-line, generated from B) and writes its ALPHA^2 values as
// V[xi][c][t] (xi = ALPHA * row + column): the input of the ALPHA^2 products, run as one grouped
// pointwise conv over TP columns. Tiles past the last (T..TP, padding to a multiple of 4
// columns) are written as zeros.
{{bindings}}
const C: u32 = {{c}};
const H: i32 = {{h}};
const W: i32 = {{w}};
const PT: i32 = {{pt}};
const PL: i32 = {{pl}};
const M: u32 = {{m}};            // outputs per tile side
const ALPHA: i32 = {{alpha}};    // input patch side, M + 2
const TW: u32 = {{tw}};          // tiles per output row
const TPL: u32 = {{tpl}};        // tiles per image
const T: u32 = {{t}};            // tiles of all images
const TP: u32 = {{tp}};          // T rounded up to a multiple of 4
const CT: u32 = C * TP;          // stride between the V of two xi

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * {{row}};
    if (i >= C * TP) {
        return;
    }
    let c = i / TP;
    let t = i % TP;
    var d: array<array<f32, {{alpha}}>, {{alpha}}>;
    if (t < T) {
        let img = t / TPL;
        let tt = t % TPL;
        let y0 = i32((tt / TW) * M) - PT;
        let x0 = i32((tt % TW) * M) - PL;
        let base = (img * C + c) * u32(H * W);
        for (var r = 0; r < ALPHA; r = r + 1) {
            for (var s = 0; s < ALPHA; s = s + 1) {
                let py = y0 + r;
                let px = x0 + s;
                if (py >= 0 && py < H && px >= 0 && px < W) {
                    d[r][s] = x[base + u32(py * W + px)];
                }
            }
        }
    }
    let at = c * TP + t;
{{transform}}
}
