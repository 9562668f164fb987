// splitk.wgsl by planes, for a conv feeding an SE block (module `splitk_squeeze`) or with an SE
// block folded into it (`splitk_gate`): adds the KS partial products of each output, applies
// the epilogue and writes y, by units of PER outputs (1, or 4 as one vec4 where H*W is a
// multiple of 4). A 256-thread workgroup covers PLANES planes (output channels of one image)
// with THREADS lanes each, over one chunk of SPAN pixels per plane (several chunks where
// H*W > SPAN, so that even one image spreads over many workgroups). Optional parts, filled by
// conv.rs (empty otherwise):
// - `gate`: first the plane's SE gate `g` (FC2 row c . z[img], THREADS lanes, then the gate
//   activation), from the hidden values the GEMM dispatch's extra workgroups computed;
// - `squeeze`: then the SE squeeze's partial sums of the outputs, one per (image, chunk,
//   channel): partials[(image * CHUNKS + chunk) * COUT + c].
{{bindings}}
const KS: u32 = {{ks}};
const PER: u32 = {{per}};           // outputs per unit
const SLABU: u32 = {{slabu}};       // units per slab: batch * COUT * HW / PER
const HW: u32 = {{hw}};
const HWU: u32 = HW / PER;
const COUT: u32 = {{cout}};
const THREADS: u32 = {{threads}};   // lanes per plane, a power of two (32..256)
const PLANES: u32 = 256u / THREADS;
const CHUNKS: u32 = {{chunks}};     // chunks per plane
const SPANU: u32 = {{span}} / PER;  // units per chunk (SPAN pixels, a multiple of 4)

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x % THREADS;
    let c = wg.x * PLANES + lid.x / THREADS;
    let img = wg.y;
    let u0 = wg.z * SPANU;
{{gate}}
    var s = 0.0;
    if (c < COUT) {
        for (var q = u0 + lane; q < min(HWU, u0 + SPANU); q = q + THREADS) {
            let ou = (img * COUT + c) * HWU + q;
            var t = {{unit}}(0.0);
            for (var k = 0u; k < KS; k = k + 1u) {
                t = t + part[k * SLABU + ou];
            }
{{apply}}
            y[ou] = t;
            s = s + {{total}};
        }
    }
{{squeeze}}
}
