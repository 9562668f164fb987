// SE block, dispatch 2 of 2 when a conv applies the gates (the next 1x1 conv as it loads, or the
// conv the block is folded into): gates[n, c] = gate(W2[c] . z[n] + b2[c]), one thread per
// gate. FC2's weight is transposed on the host (w2t[j * C + c]), so neighbouring threads
// (neighbouring channels) read neighbouring weights, and z[n] is the same for all of them: no
// reduction in workgroup memory and no barrier.
{{bindings}}
const C: u32 = {{c}};
const CR: u32 = {{cr}};
const TOTAL: u32 = {{total}};   // batch * C

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x + gid.y * {{row}};
    if (e >= TOTAL) {
        return;
    }
    let n = e / C;
    let c = e % C;
    var a = vec4<f32>(0.0);
    var j = 0u;
    // Sixteen weights per step, all loaded before the first FMA (an H100: SE-ResNet-50 at
    // batch 32 10.44 -> 10.39 ms against four per step).
    for (; j + 16u <= CR; j = j + 16u) {
        let zb = n * CR + j;
        let w0 = vec4<f32>(w2t[j * C + c], w2t[(j + 1u) * C + c], w2t[(j + 2u) * C + c],
            w2t[(j + 3u) * C + c]);
        let w1 = vec4<f32>(w2t[(j + 4u) * C + c], w2t[(j + 5u) * C + c], w2t[(j + 6u) * C + c],
            w2t[(j + 7u) * C + c]);
        let w2 = vec4<f32>(w2t[(j + 8u) * C + c], w2t[(j + 9u) * C + c],
            w2t[(j + 10u) * C + c], w2t[(j + 11u) * C + c]);
        let w3 = vec4<f32>(w2t[(j + 12u) * C + c], w2t[(j + 13u) * C + c],
            w2t[(j + 14u) * C + c], w2t[(j + 15u) * C + c]);
        a = a + w0 * vec4<f32>(z[zb], z[zb + 1u], z[zb + 2u], z[zb + 3u]);
        a = a + w1 * vec4<f32>(z[zb + 4u], z[zb + 5u], z[zb + 6u], z[zb + 7u]);
        a = a + w2 * vec4<f32>(z[zb + 8u], z[zb + 9u], z[zb + 10u], z[zb + 11u]);
        a = a + w3 * vec4<f32>(z[zb + 12u], z[zb + 13u], z[zb + 14u], z[zb + 15u]);
    }
    for (; j + 4u <= CR; j = j + 4u) {
        a = a + vec4<f32>(w2t[j * C + c], w2t[(j + 1u) * C + c], w2t[(j + 2u) * C + c],
            w2t[(j + 3u) * C + c]) * vec4<f32>(z[n * CR + j], z[n * CR + j + 1u],
            z[n * CR + j + 2u], z[n * CR + j + 3u]);
    }
    for (; j < CR; j = j + 1u) {
        a.x = a.x + w2t[j * C + c] * z[n * CR + j];
    }
    let v = a.x + a.y + a.z + a.w + {{b2}};
    gates[e] = {{gate}};
}
