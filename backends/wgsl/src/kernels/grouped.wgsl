// Depthwise and narrow grouped convolution (few channels per group, where a 64-wide GEMM tile
// would mostly compute padding). Each thread computes four horizontally adjacent outputs of
// one output channel, keeping them in registers and reading each weight tap once for all four.
{{bindings}}
const C: u32 = {{c}};         // output channels
const CIN: u32 = {{cin}};     // input channels
const CG: u32 = {{cg}};       // input channels per group
const MG: u32 = {{mg}};       // output channels per group
const H: i32 = {{h}};
const W: i32 = {{w}};
const OH: u32 = {{oh}};
const OW: u32 = {{ow}};
const OWQ: u32 = {{owq}};     // OW rounded up to 4, divided by 4
const KH: u32 = {{kh}};
const KW: u32 = {{kw}};
const SH: i32 = {{sh}};
const SW: i32 = {{sw}};
const DH: i32 = {{dh}};
const DW: i32 = {{dw}};
const PT: i32 = {{pt}};
const PL: i32 = {{pl}};
const TOTAL: u32 = {{total}}; // batch * C * OH * OWQ

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let id = gid.x + gid.y * {{row}};
    if (id >= TOTAL) {
        return;
    }
    let q = id % OWQ;
    let t = id / OWQ;
    let oy = t % OH;
    let plane = t / OH;     // batch * C + c
    let c = plane % C;
    let xplane0 = (plane / C) * CIN + (c / MG) * CG;
    let ox0 = q * 4u;
    var acc = vec4<f32>(0.0);
    for (var ci = 0u; ci < CG; ci = ci + 1u) {
        for (var ky = 0u; ky < KH; ky = ky + 1u) {
            let iy = i32(oy) * SH + i32(ky) * DH - PT;
            if (iy < 0 || iy >= H) {
                continue;
            }
            let row = ((xplane0 + ci) * u32(H) + u32(iy)) * u32(W);
            for (var kx = 0u; kx < KW; kx = kx + 1u) {
                let wv = wt[((c * CG + ci) * KH + ky) * KW + kx];
                for (var j = 0u; j < 4u; j = j + 1u) {
                    let ix = i32(ox0 + j) * SW + i32(kx) * DW - PL;
                    if (ix >= 0 && ix < W) {
                        acc[j] = acc[j] + wv * x[row + u32(ix)];
                    }
                }
            }
        }
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        let ox = ox0 + j;
        if (ox >= OW) {
            continue;
        }
        let o = (plane * OH + oy) * OW + ox;
        var v = acc[j];
{{epilogue}}
        y[o] = v;
    }
}
