// The gates of one GEMM tile's 64 output channels for an SE block folded into a small 1x1 conv
// (conv1x1.wgsl, tiles within one image): with all 256 threads, finish the squeeze of image n
// (the SE_C channel means of the conv's input), the hidden layer z = act(W13 . s + b13) into
// workgroup memory (SE_LANES lanes per unit), then the gates of channels m0.. (4 lanes each).
// Every tile repeats this, which costs less than two dispatches only when the block is small
// and the tiles few (se.rs decides). FC weights with their biases appended: se_w1b = [W13 |
// b13], se_w2b = [W2 | b2]. Call from uniform control flow.
const SE_C: u32 = {{c}};
const SE_CR: u32 = {{cr}};
const SE_HW: u32 = {{hw}};
const SE_TILES: u32 = {{tiles}};
const SE_SCALE: f32 = {{scale}};
const SE_LANES: u32 = {{lanes}};   // lanes per hidden unit, a power of two

var<workgroup> se_sm: array<f32, SE_C>;
var<workgroup> se_red: array<f32, 256>;
var<workgroup> se_zs: array<f32, SE_CR>;
var<workgroup> se_gs: array<f32, 64>;

fn se_tile(n: u32, m0: u32, t: u32) {
{{squeeze}}
    let j = t / SE_LANES;
    let l = t % SE_LANES;
    var a = 0.0;
    if (j < SE_CR) {
        for (var c = l; c < SE_C; c = c + SE_LANES) {
            a = a + se_w1b[j * SE_C + c] * se_sm[c];
        }
    }
{{sum}}
    if (l == 0u && j < SE_CR) {
        let v = se_red[t] + {{b1}};
        se_zs[j] = {{act}};
    }
    workgroupBarrier();
    let ch = t / 4u;
    let q = t % 4u;
    let c = min(m0 + ch, COUT - 1u);
    var b = 0.0;
    for (var k = q; k < SE_CR; k = k + 4u) {
        b = b + se_w2b[c * SE_CR + k] * se_zs[k];
    }
    se_red[t] = b;
    workgroupBarrier();
    if (q == 0u) {
        let v = se_red[t] + se_red[t + 1u] + se_red[t + 2u] + se_red[t + 3u] + {{b2}};
        se_gs[ch] = {{gate}};
    }
    workgroupBarrier();
}
