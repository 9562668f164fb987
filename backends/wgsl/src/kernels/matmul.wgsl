// Batched matrix product with Gemm's epilogue: Y[i, j] = ALPHA * sum_k A[i, k] B[k, j] (+ C).
// 16x16 output tiles, K staged through workgroup memory 16 at a time. Operand layouts
// (transposes, broadcast batches) are strides and offset expressions baked in by the host.
{{bindings}}
const M: u32 = {{m}};
const N: u32 = {{n}};
const K: u32 = {{k}};
const SAM: u32 = {{sam}};
const SAK: u32 = {{sak}};
const SBK: u32 = {{sbk}};
const SBN: u32 = {{sbn}};
const ALPHA: f32 = {{alpha}};

var<workgroup> At: array<array<f32, 16>, 16>;
var<workgroup> Bt: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let bi = wg.z;
    let i = wg.y * 16u + lid.y;
    let j = wg.x * 16u + lid.x;
    let abase = {{a_base}};
    let bbase = {{b_base}};
    var acc = 0.0;
    for (var k0 = 0u; k0 < K; k0 = k0 + 16u) {
        let ka = k0 + lid.x;
        let kb = k0 + lid.y;
        At[lid.y][lid.x] = select(0.0, a[abase + min(i, M - 1u) * SAM + min(ka, K - 1u) * SAK], i < M && ka < K);
        Bt[lid.y][lid.x] = select(0.0, b[bbase + min(kb, K - 1u) * SBK + min(j, N - 1u) * SBN], kb < K && j < N);
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk = kk + 1u) {
            acc = acc + At[lid.y][kk] * Bt[kk][lid.x];
        }
        workgroupBarrier();
    }
    if (i >= M || j >= N) {
        return;
    }
    var v = ALPHA * acc;
{{c_term}}
    y[bi * M * N + i * N + j] = v;
}
