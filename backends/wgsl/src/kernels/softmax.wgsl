// Softmax along one axis, one thread per (outer, inner) row: max, sum of exp, normalise.
{{bindings}}
const TOTAL: u32 = {{total}}; // outer * inner
const LEN: u32 = {{len}};
const INNER: u32 = {{inner}};

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let id = gid.x + gid.y * {{row}};
    if (id >= TOTAL) {
        return;
    }
    let base = (id / INNER) * LEN * INNER + id % INNER;
    var m = -3.4028234663852886e38;
    for (var i = 0u; i < LEN; i = i + 1u) {
        m = max(m, x[base + i * INNER]);
    }
    var s = 0.0;
    for (var i = 0u; i < LEN; i = i + 1u) {
        s = s + exp(x[base + i * INNER] - m);
    }
    for (var i = 0u; i < LEN; i = i + 1u) {
        y[base + i * INNER] = exp(x[base + i * INNER] - m) / s;
    }
}
