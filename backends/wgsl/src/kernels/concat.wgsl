// Concat, one dispatch per input: copies input [OUTER, CIN, INNER] into the output
// [OUTER, CTOT, INNER] at channel offset OFF.
{{bindings}}
const TOTAL: u32 = {{total}};
const CIN_INNER: u32 = {{cin_inner}};
const CTOT_INNER: u32 = {{ctot_inner}};
const OFF_INNER: u32 = {{off_inner}};

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x + gid.y * {{row}};
    if (o >= TOTAL) {
        return;
    }
    y[(o / CIN_INNER) * CTOT_INNER + OFF_INNER + o % CIN_INNER] = x[o];
}
