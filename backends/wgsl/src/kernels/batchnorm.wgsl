// Inference batch normalization, one thread per element: per channel c,
// y = (x - mean[c]) / sqrt(var[c] + eps) * scale[c] + bias[c].
{{bindings}}
const TOTAL: u32 = {{total}};
const C: u32 = {{c}};
const INNER: u32 = {{inner}};
const EPS: f32 = {{eps}};

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x + gid.y * {{row}};
    if (o >= TOTAL) {
        return;
    }
    let c = (o / INNER) % C;
    y[o] = (x[o] - mean[c]) / sqrt(variance[c] + EPS) * scale[c] + shift[c];
}
