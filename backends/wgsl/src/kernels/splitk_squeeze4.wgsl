// splitk_squeeze.wgsl by quads (H*W a multiple of 4): each lane adds the KS partial products
// of four outputs of its plane as vec4s, applies the epilogue to each, stores them as one vec4
// and adds them to its squeeze sum. THREADS lanes per plane over a chunk of SPAN pixels.
{{bindings}}
const KS: u32 = {{ks}};
const SLAB4: u32 = {{slab4}};       // batch * COUT * HW / 4
const HW: u32 = {{hw}};
const HWQ: u32 = HW / 4u;
const COUT: u32 = {{cout}};
const THREADS: u32 = {{threads}};   // lanes per plane, a power of two (32..256)
const PLANES: u32 = 256u / THREADS;
const CHUNKS: u32 = {{chunks}};     // chunks per plane
const SPANQ: u32 = {{span}} / 4u;   // quads per chunk

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let lane = lid.x % THREADS;
    let c = wg.x * PLANES + lid.x / THREADS;
    let img = wg.y;
    let q0 = wg.z * SPANQ;
{{gate}}
    var s = 0.0;
    if (c < COUT) {
        for (var q = q0 + lane; q < min(HWQ, q0 + SPANQ); q = q + THREADS) {
            let oq = (img * COUT + c) * HWQ + q;
            var t = vec4<f32>(0.0);
            for (var k = 0u; k < KS; k = k + 1u) {
                t = t + part[k * SLAB4 + oq];
            }
{{lanes}}
            y[oq] = t;
            s = s + (t.x + t.y) + (t.z + t.w);
        }
    }
{{squeeze}}
}
