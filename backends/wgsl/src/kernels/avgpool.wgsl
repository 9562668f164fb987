// AveragePool, one thread per output element. The divisor counts the taps inside the input,
// or (COUNT_PAD) inside input plus pads; taps a ceil-mode window puts past the end pad never count.
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
const PB: i32 = {{pb}};
const PR: i32 = {{pr}};
const COUNT_PAD: bool = {{count_pad}};
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
    var s = 0.0;
    var inside = 0;
    var padded = 0;
    for (var ky = 0; ky < KH; ky = ky + 1) {
        let py = oy * SH + ky * DH;
        let iy = py - PT;
        for (var kx = 0; kx < KW; kx = kx + 1) {
            let px = ox * SW + kx * DW;
            let ix = px - PL;
            if (py < PT + H + PB && px < PL + W + PR) {
                padded = padded + 1;
            }
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                inside = inside + 1;
                s = s + x[(plane * u32(H) + u32(iy)) * u32(W) + u32(ix)];
            }
        }
    }
    let d = select(inside, padded, COUNT_PAD);
    y[o] = select(s / f32(d), 0.0, d == 0);
}
