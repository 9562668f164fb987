// One thread per output element of a broadcasting binary op.
{{bindings}}
const TOTAL: u32 = {{total}};

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x + gid.y * {{row}};
    if (o >= TOTAL) {
        return;
    }
    let va = a[{{index_a}}];
    let vb = b[{{index_b}}];
    y[o] = va {{op}} vb;
}
