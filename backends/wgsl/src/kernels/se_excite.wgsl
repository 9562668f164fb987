// SE block, excite and scale. One 256-thread workgroup per (block of CB channels, image) first
// finishes the squeeze (s = SCALE * sum of the TILES partial sums of each channel, written by
// se_pool.wgsl or by the producing conv), computes z = act(W1 s + b1) (cheap: C*Cr MACs),
// the gates of its CB channels, then writes y = post_act(x * gate + r) for those channels.
// Both FC weights are transposed on the host so neighbouring threads read neighbouring words.
{{bindings}}
const C: u32 = {{c}};
const CR: u32 = {{cr}};
const CB: u32 = {{cb}};
const HW: u32 = {{hw}};
const TILES: u32 = {{tiles}};
const SCALE: f32 = {{scale}};
const PARTS: u32 = {{parts}};   // slices of C per hidden unit in FC1
const CSLICE: u32 = {{cslice}}; // channels per slice

var<workgroup> sm: array<f32, C>;

var<workgroup> zp: array<f32, CR * PARTS>;
var<workgroup> z: array<f32, CR>;
var<workgroup> gs: array<f32, CB>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    let n = wg.y;
    let c0 = wg.x * CB;
    for (var c = t; c < C; c = c + 256u) {
        var s = 0.0;
        for (var i = 0u; i < TILES; i = i + 1u) {
            s = s + partials[(n * TILES + i) * C + c];
        }
        sm[c] = s * SCALE;
    }
    workgroupBarrier();
    // FC1 split over all 256 threads: PARTS slices of the C channels for each hidden unit,
    // then one thread per hidden unit adds its slices.
    for (var q = t; q < CR * PARTS; q = q + 256u) {
        let j = q % CR;
        let part = q / CR;
        var v = 0.0;
        for (var c = part * CSLICE; c < min(C, (part + 1u) * CSLICE); c = c + 1u) {
            v = v + w1t[c * CR + j] * sm[c];
        }
        zp[q] = v;
    }
    workgroupBarrier();
    for (var j = t; j < CR; j = j + 256u) {
        var v = {{b1}};
        for (var part = 0u; part < PARTS; part = part + 1u) {
            v = v + zp[part * CR + j];
        }
        z[j] = {{act}};
    }
    workgroupBarrier();
    for (var cb = t; cb < CB; cb = cb + 256u) {
        let c = min(c0 + cb, C - 1u);
        var v = {{b2}};
        for (var j = 0u; j < CR; j = j + 1u) {
            v = v + w2t[j * C + c] * z[j];
        }
        gs[cb] = {{gate}};
    }
    workgroupBarrier();
    for (var e = t; e < CB * HW; e = e + 256u) {
        let cb = e / HW;
        let c = c0 + cb;
        if (c >= C) {
            break;
        }
        let o = (n * C + c) * HW + e % HW;
        let g = gs[cb];
        var v = x[o];
{{epilogue}}
        y[o] = v;
    }
}
