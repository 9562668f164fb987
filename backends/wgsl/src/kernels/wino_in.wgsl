// Winograd F(2x2, 3x3), input transform (winograd.rs): one thread per (input channel c, tile
// t) gathers the tile's 4x4 input patch (zero outside the image), computes V = B^T d B and
// writes its 16 values as V[xi][c][t] (xi = 4 * row + column), the input of the 16 GEMMs run as
// one grouped pointwise conv over TP columns. Tiles past the last (T..TP, padding to a multiple
// of 4 columns) are written as zeros.
{{bindings}}
const C: u32 = {{c}};
const H: i32 = {{h}};
const W: i32 = {{w}};
const PT: i32 = {{pt}};
const PL: i32 = {{pl}};
const TW: u32 = {{tw}};          // tiles per output row
const TPL: u32 = {{tpl}};        // tiles per image
const T: u32 = {{t}};            // tiles of all images
const TP: u32 = {{tp}};          // T rounded up to a multiple of 4

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * {{row}};
    if (i >= C * TP) {
        return;
    }
    let c = i / TP;
    let t = i % TP;
    var d: array<array<f32, 4>, 4>;
    if (t < T) {
        let img = t / TPL;
        let tt = t % TPL;
        let y0 = i32((tt / TW) * 2u) - PT;
        let x0 = i32((tt % TW) * 2u) - PL;
        let base = (img * C + c) * u32(H * W);
        for (var r = 0; r < 4; r = r + 1) {
            for (var s = 0; s < 4; s = s + 1) {
                let py = y0 + r;
                let px = x0 + s;
                if (py >= 0 && py < H && px >= 0 && px < W) {
                    d[r][s] = x[base + u32(py * W + px)];
                }
            }
        }
    }
    // B^T d (rows), then (B^T d) B (columns).
    var e: array<array<f32, 4>, 4>;
    for (var s = 0; s < 4; s = s + 1) {
        e[0][s] = d[0][s] - d[2][s];
        e[1][s] = d[1][s] + d[2][s];
        e[2][s] = d[2][s] - d[1][s];
        e[3][s] = d[1][s] - d[3][s];
    }
    for (var r = 0u; r < 4u; r = r + 1u) {
        let at = (r * 4u * C + c) * TP + t;
        v[at] = e[r][0] - e[r][2];
        v[at + C * TP] = e[r][1] + e[r][2];
        v[at + 2u * C * TP] = e[r][2] - e[r][1];
        v[at + 3u * C * TP] = e[r][1] - e[r][3];
    }
}
