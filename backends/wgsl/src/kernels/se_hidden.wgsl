// The SE hidden layer for se_fc.wgsl and for the GEMM conv kernels' extra workgroups: with
// all 256 threads of a workgroup, finish the squeeze of image n (the SE_C channel means) and
// compute hidden units [ub * SE_JB, ub * SE_JB + SE_JB) of z[n]. Call from uniform control flow.
const SE_C: u32 = {{c}};
const SE_CR: u32 = {{cr}};
const SE_HW: u32 = {{hw}};
const SE_TILES: u32 = {{tiles}};
const SE_SCALE: f32 = {{scale}};
const SE_JB: u32 = {{jb}};       // hidden units per call, a multiple of 2

var<workgroup> se_sm: array<f32, SE_C>;
var<workgroup> se_red: array<f32, 256>;

fn se_hidden(ub: u32, n: u32, t: u32) {
{{squeeze}}
    workgroupBarrier();
    let lane = t % 128u;
    for (var j0 = ub * SE_JB; j0 < min(SE_CR, ub * SE_JB + SE_JB); j0 = j0 + 2u) {
        let j = j0 + t / 128u;
        var a = vec4<f32>(0.0);
        if (j < SE_CR) {
            let row = j * SE_C;
            var c = lane;
            for (; c + 384u < SE_C; c = c + 512u) {
                a = a + vec4<f32>(se_w1[row + c], se_w1[row + c + 128u], se_w1[row + c + 256u],
                    se_w1[row + c + 384u]) * vec4<f32>(se_sm[c], se_sm[c + 128u],
                    se_sm[c + 256u], se_sm[c + 384u]);
            }
            for (; c < SE_C; c = c + 128u) {
                a.x = a.x + se_w1[row + c] * se_sm[c];
            }
        }
{{sum}}
        if (lane == 0u && j < SE_CR) {
            let v = se_red[t] + {{b1}};
            se_z[n * SE_CR + j] = {{act}};
        }
        workgroupBarrier();
    }
}
