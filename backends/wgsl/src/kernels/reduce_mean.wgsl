// Mean over some axes (ReduceMean, GlobalAveragePool), one thread per output element walking
// the R reduced elements; BASE and ROFF map output and reduction indices to input offsets.
{{bindings}}
const TOTAL: u32 = {{total}};
const R: u32 = {{r}};

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x + gid.y * {{row}};
    if (o >= TOTAL) {
        return;
    }
    let base = {{base}};
    var s = 0.0;
    for (var r = 0u; r < R; r = r + 1u) {
        s = s + x[base + {{roff}}];
    }
    y[o] = s / f32(R);
}
