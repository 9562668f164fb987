// SE block, dispatch 1 of 2: the hidden layer (se_hidden.wgsl; a split-K conv that an SE
// block is folded into runs the same function in extra workgroups of its GEMM dispatch). Each 256-thread workgroup finishes the squeeze
// of one image (the channel means, from the TILES partial sums per channel that the producing
// conv wrote, or by reading the image itself) and computes JB hidden units
// z[n, j] = act(W1[j] . s + b1[j]), two at a time: 128 lanes per unit read W1's row j
// coalesced, four independent sums each, and add up in workgroup memory. Many workgroups
// share the FC work, so no thread runs a long chain of dependent loads.
{{bindings}}
{{hidden}}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    se_hidden(wg.x, wg.y, lid.x);
}
