// MaxPool, one thread per output element; padded taps are skipped.
{{bindings}}
const H: i32 = {{h}};
const W: i32 = {{w}};
const OH: u32 = {{oh}};
const OW: u32 = {{ow}};
const KH: i32 = {{kh}};
const KW: i32 = {{kw}};
const SH: i32 = {{sh}};
const SW: i32 = {{sw}};
const DH: i32 = {{dh}};
const DW: i32 = {{dw}};
const PT: i32 = {{pt}};
const PL: i32 = {{pl}};
const TOTAL: u32 = {{total}};

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x + gid.y * {{row}};
    if (o >= TOTAL) {
        return;
    }
    let ox = i32(o % OW);
    let oy = i32((o / OW) % OH);
    let plane = o / (OW * OH);
    var m = -3.4028234663852886e38;
    for (var ky = 0; ky < KH; ky = ky + 1) {
        let iy = oy * SH + ky * DH - PT;
        for (var kx = 0; kx < KW; kx = kx + 1) {
            let ix = ox * SW + kx * DW - PL;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                m = max(m, x[(plane * u32(H) + u32(iy)) * u32(W) + u32(ix)]);
            }
        }
    }
    y[o] = m;
}
