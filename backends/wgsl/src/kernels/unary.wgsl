// One thread per output element: reads x at a (possibly broadcast) index, applies the
// pointwise steps, writes y. Serves the activations, Identity copies and Expand.
{{bindings}}
const TOTAL: u32 = {{total}};

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x + gid.y * {{row}};
    if (o >= TOTAL) {
        return;
    }
    var v = x[{{index}}];
{{epilogue}}
    y[o] = v;
}
