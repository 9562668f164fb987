// SE block, dispatch 1 of 2: the hidden layer. Each 256-thread workgroup finishes the squeeze
// of one image (the channel means, from the TILES partial sums per channel that the producing
// conv wrote, or by reading the image itself) and computes JB hidden units
// z[n, j] = act(W1[j] . s + b1[j]), two at a time: 128 lanes per unit read W1's row j
// coalesced, four independent sums each, and add up in workgroup memory. Many workgroups
// share the FC work, so no thread runs a long chain of dependent loads.
{{bindings}}
const C: u32 = {{c}};
const CR: u32 = {{cr}};
const HW: u32 = {{hw}};
const TILES: u32 = {{tiles}};
const SCALE: f32 = {{scale}};
const JB: u32 = {{jb}};       // hidden units per workgroup, a multiple of 2

var<workgroup> sm: array<f32, C>;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    let n = wg.y;
{{squeeze}}
    workgroupBarrier();
    let lane = t % 128u;
    for (var j0 = wg.x * JB; j0 < min(CR, wg.x * JB + JB); j0 = j0 + 2u) {
        let j = j0 + t / 128u;
        var a = vec4<f32>(0.0);
        if (j < CR) {
            let row = j * C;
            var c = lane;
            for (; c + 384u < C; c = c + 512u) {
                a = a + vec4<f32>(w1[row + c], w1[row + c + 128u], w1[row + c + 256u],
                    w1[row + c + 384u]) * vec4<f32>(sm[c], sm[c + 128u], sm[c + 256u],
                    sm[c + 384u]);
            }
            for (; c < C; c = c + 128u) {
                a.x = a.x + w1[row + c] * sm[c];
            }
        }
        red[t] = a.x + a.y + a.z + a.w;
        workgroupBarrier();
        for (var w = 64u; w > 0u; w = w / 2u) {
            if (lane < w) {
                red[t] = red[t] + red[t + w];
            }
            workgroupBarrier();
        }
        if (lane == 0u && j < CR) {
            let v = red[t] + {{b1}};
            z[n * CR + j] = {{act}};
        }
        workgroupBarrier();
    }
}
