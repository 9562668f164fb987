// An SE block's gates in one dispatch (se.rs picks it when the repeated work below is small,
// i.e. at small batches): one 256-thread workgroup per (block of CB gated channels, image)
// finishes the squeeze of its image (the `squeeze` hole: se_fc's snippets), computes all CR
// hidden units z = act(W1 . s + b1) into workgroup memory (LJ lanes per unit), then its
// channels' gates gate(W2[c] . z + b2[c]) (256 / CB lanes per channel) and stores them in
// gates[n, c]. Each workgroup of an image recomputes z, which saves the dispatch boundary
// between se_fc and se_gates (a few microseconds, most of an SE block's cost at batch 1).
{{bindings}}
const C: u32 = {{c}};         // squeezed channels (FC1 inputs)
const CR: u32 = {{cr}};
const HW: u32 = {{hw}};
const TILES: u32 = {{tiles}};
const SCALE: f32 = {{scale}};
const CO: u32 = {{co}};       // gated channels (FC2 outputs)
const CB: u32 = {{cb}};       // a power of two
const LANES: u32 = 256u / CB; // lanes per gated channel
const LJ: u32 = {{lj}};       // lanes per hidden unit, a power of two

var<workgroup> sm: array<f32, C>;
var<workgroup> red: array<f32, 256>;
var<workgroup> zs: array<f32, CR>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    let n = wg.y;
{{squeeze}}
    workgroupBarrier();
    let lj = t % LJ;
    for (var j0 = 0u; j0 < CR; j0 = j0 + 256u / LJ) {
        let j = j0 + t / LJ;
        var a = 0.0;
        if (j < CR) {
            for (var k = lj; k < C; k = k + LJ) {
                a = a + w1[j * C + k] * sm[k];
            }
        }
        red[t] = a;
        workgroupBarrier();
        for (var w = LJ / 2u; w > 0u; w = w / 2u) {
            if (lj < w) {
                red[t] = red[t] + red[t + w];
            }
            workgroupBarrier();
        }
        if (lj == 0u && j < CR) {
            let v = red[t] + {{b1}};
            zs[j] = {{act}};
        }
        workgroupBarrier();
    }
    let lane = t % LANES;
    let co = wg.x * CB + t / LANES;
    let c = min(co, CO - 1u);
    var acc = 0.0;
    for (var j = lane; j < CR; j = j + LANES) {
        acc = acc + w2[c * CR + j] * zs[j];
    }
    red[t] = acc;
    workgroupBarrier();
    for (var w = LANES / 2u; w > 0u; w = w / 2u) {
        if (lane < w) {
            red[t] = red[t] + red[t + w];
        }
        workgroupBarrier();
    }
    if (lane == 0u && co < CO) {
        let v = red[t] + {{b2}};
        gates[n * CO + co] = {{gate}};
    }
}
