//! Convolutions (plain and fused): the tiled implicit GEMM for dense and grouped convolutions,
//! a register-blocked direct kernel for depthwise and narrow grouped ones, all with the fused
//! epilogue; 1x1 convolutions read their input as aligned vec4s. A convolution whose weight is
//! not a constant (an ONNX graph input) runs on the direct kernel, which needs no packing.

use std::sync::Arc;

use excite_ir::op::Conv;
use excite_ir::{FusedConv, Node, ValueId};

use crate::WgslError;
use crate::expr::{Step, conv_epilogue, emit, emit_with};
use crate::lower::{Deferred, Lower, Partials, bindings, tree_sum, unsupported};
use crate::render::{i, render, u};
use crate::se::{Hidden, TileGates};

const GEMM: &str = include_str!("kernels/conv.wgsl");
const POINTWISE: &str = include_str!("kernels/conv1x1.wgsl");
const POINTWISE_SQUEEZE: &str = include_str!("kernels/conv1x1_squeeze.wgsl");
const GROUPED: &str = include_str!("kernels/grouped.wgsl");
const SPLITK: &str = include_str!("kernels/splitk.wgsl");
/// conv1x1's `prologue` when an SE block left its scale to the conv.
const SE_PROLOGUE: &str = include_str!("kernels/conv1x1_se_prologue.wgsl");
/// The k-loop and k-step of the GEMM tile, spliced into the three GEMM conv kernels, and each
/// kernel's B loads for the loop.
const GEMM_LOOP: &str = include_str!("kernels/gemm_loop.wgsl");
const GEMM_STEP: &str = include_str!("kernels/gemm_step.wgsl");
const LOAD_B_GATHER: &str = include_str!("kernels/conv_load_b.wgsl");
const LOAD_B_QUAD: &str = include_str!("kernels/conv1x1_load_b.wgsl");
const LOAD_B_SQUEEZE: &str = include_str!("kernels/conv1x1_squeeze_load_b.wgsl");
const SPLITK_SQUEEZE: &str = include_str!("kernels/splitk_squeeze.wgsl");
/// splitk_squeeze's `gate` and `squeeze` parts.
const SPLITK_GATE: &str = include_str!("kernels/splitk_gate.wgsl");
const SPLITK_SQUEEZE_END: &str = include_str!("kernels/splitk_squeeze_end.wgsl");
/// One output of a GEMM tile's epilogue, repeated straight-line by [`gemm_module`].
const STORE: &str = include_str!("kernels/conv_store.wgsl");
/// STORE for a row of four consecutive outputs stored as one vec4 (pointwise kernel).
const STORE4: &str = include_str!("kernels/conv_store4.wgsl");

pub(crate) fn fused_conv(
    l: &mut Lower<'_>,
    node: &Node,
    f: &FusedConv,
    y: usize,
) -> Result<(), WgslError> {
    let bias = f.bias.then(|| node.inputs.get(2).copied()).flatten();
    if f.bias && bias.is_none() {
        return Err(unsupported(node, "bias input missing"));
    }
    let steps = conv_epilogue(false, f.act, f.residual, f.post_act);
    let res = if f.residual {
        let r = node.inputs.get(2 + usize::from(f.bias)).copied();
        Some(r.ok_or_else(|| unsupported(node, "residual input missing"))?)
    } else {
        None
    };
    lower(l, node, &f.conv, bias, res, &steps, None, y)
}

pub(crate) fn conv(
    l: &mut Lower<'_>,
    node: &Node,
    c: &Conv,
    bias: Option<ValueId>,
    steps: &[Step],
    y: usize,
) -> Result<(), WgslError> {
    lower(l, node, c, bias, None, steps, None, y)
}

/// Where the gates of an SE block folded into a conv come from (se::folded_conv).
pub(crate) enum Gates {
    /// A `[N, C]` buffer computed before the conv, which [`Step::Gate`] multiplies by.
    Buffer(usize),
    /// Computed with a conv that splits K ([`splits`] > 1): extra workgroups of its GEMM
    /// dispatch run the SE hidden layer, and the reduction computes each plane's gate `g`
    /// ([`Step::Scale`]) first, so the SE block needs no dispatch of its own.
    Tail(SeTail),
    /// Computed by each tile of an unsplit 1x1 conv over planes of whole tiles, for the tile's
    /// channels, into workgroup memory ([`Step::TileGate`]): no SE dispatch either.
    Tile(TileGates),
}

/// What [`Gates::Tail`] needs: the hidden layer's code and bindings, FC2 and the gate.
pub(crate) struct SeTail {
    pub hidden: Hidden,
    pub w2: usize,
    pub b2: Option<usize>,
    pub cr: usize,
    /// The gate activation of `gv`, a WGSL expression.
    pub gate: String,
}

/// Lowers a conv with the epilogue `post` after its bias, the residual `res` if any, and, for
/// a linear 1x1 conv with an SE block folded into it (se::folded_conv), its `gates`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lower(
    l: &mut Lower<'_>,
    node: &Node,
    c: &Conv,
    bias: Option<ValueId>,
    res: Option<ValueId>,
    post: &[Step],
    gates: Option<&Gates>,
    y: usize,
) -> Result<(), WgslError> {
    let (xv, wv) = (node.inputs[0], node.inputs[1]);
    let xs = l.shape(xv)?;
    let ws = l.shape(wv)?;
    let os = l.shape(node.outputs[0])?;
    let (&[n, cin, h, w], &[m, cg, kh, kw], &[_, _, oh, ow]) = (&xs[..], &ws[..], &os[..]) else {
        return Err(unsupported(
            node,
            "only 2-D convolutions (4-D tensors) are supported",
        ));
    };
    let g = c.group;
    if g == 0 || cin != cg * g || m % g != 0 {
        return Err(unsupported(node, "channels do not match the groups"));
    }
    let mg = m / g;
    let mut steps = Vec::new();
    if bias.is_some() {
        steps.push(Step::Bias);
    }
    steps.extend_from_slice(post);
    let epilogue = emit(&steps)?;
    // The GEMM kernels read weights packed on the host; a weight computed at run time (an
    // ONNX graph input) goes to the direct kernel, which reads the plain OIHW layout.
    let direct = narrow_groups(g, cg, mg) || l.weight_data(wv).is_none();
    let one_by_one = !direct && [kh, kw] == [1, 1] && c.strides == [1, 1] && c.pads == [0; 4];
    let aligned = (h * w).is_multiple_of(4);
    // A GEMM conv feeding an SE block (or a conv an SE block is folded into) also writes the
    // squeeze's partial sums.
    let squeeze = !direct && l.squeezed.contains_key(&node.outputs[0]);
    let pointwise = one_by_one && aligned;
    let ntot = n * oh * ow;
    // Images a 64-column tile meets at most, for squeezes over tiles that straddle images.
    let parts = tile_parts(ntot, oh * ow);
    // An SE block left its scale to this conv (se::scale_into_consumers chose it).
    let deferred = l.deferred.remove(&xv);
    if deferred.is_some() && (!pointwise || squeeze || g != 1) {
        return Err(unsupported(
            node,
            "internal: an SE scale was left to a conv that cannot apply it",
        ));
    }
    // Tiles of 128 output channels (each thread 8 x 4 outputs: every B quad read from workgroup
    // memory feeds twice the FMAs) for pointwise convs with that many and K >= 128: on an H100
    // those ran 5-17% faster, those with K = 64 4% slower, and the gathering 3x3 kernel with
    // 128-row tiles 6x slower, and so was SE-ResNet-50 unfolded, whose 1x1 convs apply an SE
    // scale as they load. 64 rows otherwise, and for the squeeze kernels (row sums of 64).
    let tile_gates = matches!(gates, Some(Gates::Tile(_)));
    let mq = tile_rows(
        l,
        pointwise,
        mg,
        cg,
        squeeze || deferred.is_some() || tile_gates,
    );
    // 3x3 stride-1 convs by Winograd where that knob is on (winograd.rs).
    if !direct
        && deferred.is_none()
        && gates.is_none()
        && [kh, kw] == [3, 3]
        && crate::winograd::eligible(l, c, [n, cin, m], [oh, ow])
        && let Some(wdata) = l.weight_data(wv)
    {
        let wdata: Arc<[f32]> = Arc::from(wdata);
        let mut extra = Vec::new();
        if let Some(b) = bias {
            extra.push((("bias", false, "f32"), l.buffer_of(b)?));
        }
        if let Some(r) = res {
            extra.push((("res", false, "f32"), l.buffer_of(r)?));
        }
        let x = l.buffer_of(xv)?;
        let wc = crate::winograd::WinoConv {
            x,
            y,
            w: &wdata,
            w_name: l.g.value(wv).name.clone(),
            extra,
            epilogue,
            squeeze,
        };
        return crate::winograd::lower(l, node, c, [n, cin, h, w], [m, oh, ow], wc);
    }
    let mut decl = vec![if pointwise {
        ("x4", false, "vec4<f32>")
    } else {
        ("x", false, "f32")
    }];
    let mut binds = vec![match &deferred {
        Some(d) => d.x,
        None => l.buffer_of(xv)?,
    }];
    let wbuf = if direct {
        l.buffer_of(wv)?
    } else {
        let data = l
            .weight_data(wv)
            .ok_or_else(|| unsupported(node, "the weight must be a constant"))?;
        let k = cg * kh * kw;
        let packed = pack(data, g, mg, k, mq);
        l.weight(&format!("{}.packed", l.g.value(wv).name), packed)?
    };
    decl.push((
        if direct { "wt" } else { "wp" },
        false,
        if direct { "f32" } else { "vec4<f32>" },
    ));
    binds.push(wbuf);
    if let Some(b) = bias {
        decl.push(("bias", false, "f32"));
        binds.push(l.buffer_of(b)?);
    }
    if let Some(r) = res {
        decl.push(("res", false, "f32"));
        binds.push(l.buffer_of(r)?);
    }
    if let Some(Gates::Buffer(gb)) = gates {
        decl.push(("gates", false, "f32"));
        binds.push(*gb);
    }
    let tail = match gates {
        Some(Gates::Tail(t)) => Some(t),
        _ => None,
    };
    let tile = match gates {
        Some(Gates::Tile(t)) => Some(t),
        _ => None,
    };
    if tile.is_some() && !(pointwise && !squeeze && deferred.is_none() && (h * w) % 64 == 0) {
        return Err(unsupported(
            node,
            "internal: SE gates left to the tiles of a conv that cannot compute them",
        ));
    }
    decl.push(("y", true, "f32"));
    binds.push(y);
    let epilogue = ("epilogue", epilogue);
    let (pro_decl, pro_binds, holes) = pointwise_holes(deferred.as_ref())?;
    let k = cg * kh * kw;
    let kpad = k.next_multiple_of(16);
    let gemm = [
        ("cin", u(cin)),
        ("cg", u(cg)),
        ("mg", u(mg)),
        ("mpad", u(mg.next_multiple_of(64 * mq))),
        ("mq", u(mq)),
        ("acc_len", u(4 * mq)),
        ("k", u(k)),
        ("kpad", u(kpad)),
        ("ntot", u(ntot)),
        ("cout", u(m)),
    ];
    let (ks, kch) = if direct {
        (1, kpad)
    } else {
        k_split(l, [ntot, m, mg.div_ceil(64 * mq) * g, kpad])
    };
    if (tail.is_some() && ks < 2) || (tile.is_some() && ks > 1) {
        return Err(unsupported(
            node,
            "internal: SE gates left to a conv that does not split K as expected",
        ));
    }
    if ks > 1 {
        // Split K: the GEMM writes ks partial products, splitk.wgsl adds them and runs the
        // epilogue (and the squeeze, for a conv feeding an SE block).
        let slab = ntot * m;
        let part = l.temp(&format!("{}.splitk", node.name), ks * slab)?;
        let mut gemm_decl = vec![decl[0], decl[1], ("y", true, y_type(l, pointwise))];
        gemm_decl.extend_from_slice(&pro_decl);
        let mut gemm_binds = vec![binds[0], binds[1], part];
        gemm_binds.extend_from_slice(&pro_binds);
        let tiles_x = ntot.div_ceil(64);
        let tiles_y = mg.div_ceil(64 * mq);
        let mut v = vec![
            ("bindings", String::new()),
            ("epilogue", String::new()),
            ("ks", u(ks)),
            ("kch", u(kch)),
            ("ysplit", format!("ks * {} + ", u(slab))),
        ];
        if let Some(t) = tail {
            // The SE hidden layer in an extra z layer of workgroups, the last (on an H100 at batch
            // 1 SE-ResNet-50 ran 2% faster than with it first).
            gemm_decl.extend_from_slice(&t.hidden.decl);
            gemm_binds.extend_from_slice(&t.hidden.binds);
            v.extend(se_head(t, n, [tiles_x, tiles_y]));
        }
        v[0].1 = bindings(&gemm_decl);
        v.extend(gemm);
        let groups = [
            tiles_x as u32,
            tiles_y as u32,
            (g * ks + usize::from(tail.is_some())) as u32,
        ];
        let module = if pointwise {
            v.push(("hw", u(h * w)));
            v.extend(holes.clone());
            gemm_module(l, "conv1x1", POINTWISE, v, mq)?
        } else {
            v.extend(window(h, w, oh, ow, kh, kw, c));
            v.extend(squeeze_holes(0));
            gemm_module(l, "conv", GEMM, v, mq)?
        };
        l.dispatch(node, module, gemm_binds, groups)?;
        // The reduction reads the parts instead of x and the weight; by quads of outputs
        // where a plane holds whole quads.
        let hw = oh * ow;
        let quads = l.limits.vec4_splitk && hw.is_multiple_of(4);
        let vty = if quads { "vec4<f32>" } else { "f32" };
        let mut rdecl = vec![("part", false, vty)];
        rdecl.extend_from_slice(&decl[2..]);
        retype_y(&mut rdecl, vty);
        let mut rbinds = vec![part];
        rbinds.extend_from_slice(&binds[2..]);
        // By planes (with a squeeze or a gate): THREADS lanes per plane, PLANES planes per
        // workgroup, planes over SPAN pixels split in chunks (partial sums per chunk).
        let span = (l.limits.squeeze_span as usize).max(32).next_multiple_of(4);
        let per_chunk = if quads {
            hw.min(span) / 4
        } else {
            hw.min(span)
        };
        let threads = per_chunk.next_power_of_two().clamp(32, 256);
        let chunks = hw.div_ceil(span);
        let squeeze_end = if squeeze {
            plane_squeeze(
                l,
                node,
                n * chunks * m,
                [chunks, threads],
                (&mut rdecl, &mut rbinds),
            )?
        } else {
            String::new()
        };
        let mut gate = String::new();
        if let Some(t) = tail {
            rdecl.extend([("se_z", false, "f32"), ("se_w2", false, "f32")]);
            rbinds.extend([t.hidden.z, t.w2]);
            if let Some(b2) = t.b2 {
                rdecl.push(("se_b2", false, "f32"));
                rbinds.push(b2);
            }
            let b2 = if t.b2.is_some() {
                "se_b2[min(c, COUT - 1u)]"
            } else {
                "0.0"
            };
            gate = render(
                "splitk_gate",
                SPLITK_GATE,
                &[
                    ("cr", u(t.cr)),
                    ("b2", b2.to_string()),
                    ("gate", t.gate.clone()),
                    (
                        "sum",
                        tree_sum(l.limits.tree_radix, ["red", "lid.x", "ga", "lane"], threads)?,
                    ),
                ],
            )?
            .trim_end()
            .to_string();
        }
        // Units of `per` outputs: one, or a vec4 quad.
        let per = if quads { 4 } else { 1 };
        let base = if squeeze || tail.is_some() { "ou" } else { "q" };
        let apply = unit_lanes("t", &format!("{base} * PER"), &epilogue.1, "", per, 4);
        let mut v = vec![
            ("bindings", bindings(&rdecl)),
            ("ks", u(ks)),
            ("per", u(per)),
            ("slabu", u(slab / per)),
            ("hw", u(oh * ow)),
            ("cout", u(m)),
            ("unit", vty.to_string()),
            ("apply", apply),
        ];
        if squeeze || tail.is_some() {
            let name = if tail.is_some() {
                "splitk_gate"
            } else {
                "splitk_squeeze"
            };
            let total = if quads {
                "(t.x + t.y) + (t.z + t.w)"
            } else {
                "t"
            };
            v.extend([
                ("threads", u(threads)),
                ("chunks", u(chunks)),
                ("span", u(span)),
                ("gate", gate),
                ("squeeze", squeeze_end),
                ("total", total.to_string()),
            ]);
            let module = l.module(name, SPLITK_SQUEEZE, &v)?;
            let groups = [m.div_ceil(256 / threads), n, chunks].map(|d| d as u32);
            l.dispatch(node, module, rbinds, groups)?;
        } else {
            let (groups, row) = l.grid(slab / per);
            v.push(("row", row));
            let module = l.module("splitk", SPLITK, &v)?;
            l.dispatch(node, module, rbinds, groups)?;
        }
        l.release(part);
        release(l, deferred);
        return Ok(());
    }
    let unsplit = [("ks", u(1)), ("kch", u(kpad)), ("ysplit", String::new())];
    let gemm_groups = [
        ntot.div_ceil(64) as u32,
        mg.div_ceil(64 * mq) as u32,
        g as u32,
    ];
    // Workgroup memory of a GEMM tile (8 KiB) and of the squeeze's row sums (4 KiB).
    let room = l.limits.max_compute_workgroup_storage_size >= 12288 && parts <= MAX_PARTS;
    let straddle = pointwise && h * w >= 64 && !(h * w).is_multiple_of(64);
    if squeeze && room && (straddle || !one_by_one) {
        // Per-image tiles would compute padding columns (a quarter of them at 14x14; that 1x1
        // conv ran 16% slower on an H100): squeeze over tiles that straddle images instead,
        // `parts` partial sums per tile and channel.
        let tiles = ntot.div_ceil(64);
        let partials = l.temp(&format!("{}.partials", node.name), tiles * parts * m)?;
        decl.push(("partials", true, "f32"));
        binds.push(partials);
        let mut v = vec![("bindings", bindings(&decl)), epilogue];
        v.extend(gemm);
        v.extend(unsplit);
        v.extend(squeeze_holes(parts));
        let module = if one_by_one {
            retype_y(&mut decl, y_type(l, true));
            v[0].1 = bindings(&decl);
            v.push(("hw", u(h * w)));
            v.push(("prologue", String::new()));
            gemm_module(l, "conv1x1", POINTWISE, v, mq)?
        } else {
            v.extend(window(h, w, oh, ow, kh, kw, c));
            gemm_module(l, "conv", GEMM, v, mq)?
        };
        l.dispatch(node, module, binds, gemm_groups)?;
        l.squeezed.insert(
            node.outputs[0],
            Some(Partials {
                buf: partials,
                tiles,
                parts,
            }),
        );
        return Ok(());
    }
    if squeeze && one_by_one {
        let out = node.outputs[0];
        let hw = h * w;
        let tiles = hw.div_ceil(64);
        let partials = l.temp(&format!("{}.partials", node.name), n * tiles * m)?;
        decl.push(("partials", true, "f32"));
        binds.push(partials);
        let load_quad = if aligned {
            "    return x4[i / 4u];".to_string()
        } else {
            "    var q = vec4<f32>(0.0);\n    for (var j = 0u; j < min(left, 4u); j = j + 1u) {\n        q[j] = x[i + j];\n    }\n    return q;".to_string()
        };
        let mut v = vec![
            ("bindings", bindings(&decl)),
            ("hw", u(hw)),
            ("tiles", u(tiles)),
            ("load_quad", load_quad),
            epilogue,
        ];
        v.extend(gemm);
        v.extend(gemm_loop(mq, LOAD_B_SQUEEZE.trim_end().to_string())?);
        let module = l.module("conv1x1_squeeze", POINTWISE_SQUEEZE, &v)?;
        let groups = [(n * tiles) as u32, mg.div_ceil(64 * mq) as u32, g as u32];
        l.dispatch(node, module, binds, groups)?;
        l.squeezed.insert(
            out,
            Some(Partials {
                buf: partials,
                tiles,
                parts: 0,
            }),
        );
        return Ok(());
    }
    if pointwise {
        retype_y(&mut decl, y_type(l, true));
        decl.extend_from_slice(&pro_decl);
        binds.extend_from_slice(&pro_binds);
        let mut v = vec![("bindings", String::new()), ("hw", u(h * w)), epilogue];
        if let Some(t) = tile {
            // Each tile first computes its channels' SE gates (tiles within one image).
            decl.extend_from_slice(&t.decl);
            binds.extend_from_slice(&t.binds);
            v.extend([
                ("se_fn", t.code.trim_end().to_string()),
                (
                    "se_head",
                    "    let wz = wg.z;\n    se_tile((wg.x * 64u) / HW, wg.y * 64u, lid.y * 16u + lid.x);"
                        .to_string(),
                ),
            ]);
        }
        v[0].1 = bindings(&decl);
        v.extend(holes);
        v.extend(gemm);
        v.extend(unsplit);
        let module = gemm_module(l, "conv1x1", POINTWISE, v, mq)?;
        l.dispatch(node, module, binds, gemm_groups)?;
        release(l, deferred);
        return Ok(());
    }
    let [sh, sw, dh, dw] = [c.strides[0], c.strides[1], c.dilations[0], c.dilations[1]];
    let mut v = vec![("bindings", bindings(&decl)), epilogue];
    // The direct kernel takes strides and dilations signed; the GEMM one unsigned.
    let window = window(h, w, oh, ow, kh, kw, c);
    if direct {
        v.extend(window.into_iter().take(8));
        let owq = ow.div_ceil(4);
        let total = n * m * oh * owq;
        let (wg, row) = l.grid(total);
        v.extend([
            ("c", u(m)),
            ("cin", u(cin)),
            ("cg", u(cg)),
            ("mg", u(mg)),
            ("owq", u(owq)),
            ("sh", i(sh)),
            ("sw", i(sw)),
            ("dh", i(dh)),
            ("dw", i(dw)),
            ("total", u(total)),
            ("row", row),
        ]);
        let module = l.module("grouped", GROUPED, &v)?;
        return l.dispatch(node, module, binds, wg);
    }
    v.extend(window);
    v.extend(gemm);
    v.extend(unsplit);
    v.extend(squeeze_holes(0));
    let module = gemm_module(l, "conv", GEMM, v, mq)?;
    l.dispatch(node, module, binds, gemm_groups)
}

/// Renders a GEMM conv module (conv.wgsl or conv1x1.wgsl) from `v`: its `epilogue`, `ysplit`
/// and `rowsum` values become the `store` hole, STORE once per output of a thread's
/// `(4 * mq) x 4` block with constant indices, and the k-loop (`gemm_loop`) gets the kernel's
/// B loads: conv.wgsl's gather, or conv1x1.wgsl's quads with their `prologue`.
/// Loops over those outputs (indexing `acc` with a loop counter) would cost registers, as the
/// loops over the A quads did (see [`gemm_step`]).
fn gemm_module(
    l: &mut Lower<'_>,
    name: &str,
    template: &str,
    mut v: Vec<Hole>,
    mq: usize,
) -> Result<usize, WgslError> {
    let mut take = |hole: &str| -> Result<String, WgslError> {
        let at = v
            .iter()
            .position(|(k, _)| *k == hole)
            .ok_or_else(|| WgslError::Template {
                kernel: name.to_string(),
                msg: format!("no value for `{hole}`"),
            })?;
        Ok(v.remove(at).1)
    };
    let body = [
        ("epilogue", take("epilogue")?),
        ("ysplit", take("ysplit")?),
        ("rowsum", take("rowsum")?),
    ];
    let gather = template == GEMM;
    // Where the thread's four columns are: consecutive, or (gathering kernel with
    // `strided_cols`) 16 apart, so that each load and store of a warp is contiguous.
    let strided = gather && l.limits.strided_cols;
    let load_b = if gather {
        render(name, LOAD_B_GATHER, &[gather_hole()])?
    } else {
        render(name, LOAD_B_QUAD, &[("prologue", take("prologue")?)])?
    };
    let mut store = String::new();
    let quads = !gather && l.limits.vec4_stores;
    for r in 0..4 * mq {
        if quads {
            store.push_str(&store_quad(name, r, &body)?);
            continue;
        }
        for (j, lane) in ["x", "y", "z", "w"].iter().enumerate() {
            let col = if strided {
                format!("tx + {}u", 16 * j)
            } else {
                format!("tx * 4u + {j}u")
            };
            let mut holes = vec![
                ("r", r.to_string()),
                ("lane", lane.to_string()),
                ("i", (r % 4).to_string()),
                ("blk", (r / 4).to_string()),
                ("j", j.to_string()),
                ("col", col),
            ];
            holes.extend(body.iter().cloned());
            store.push_str(&render(name, STORE, &holes)?);
        }
    }
    v.push(("store", store.trim_end().to_string()));
    if !v.iter().any(|(k, _)| *k == "se_head") {
        v.extend([
            ("se_head", "    let wz = wg.z;".to_string()),
            ("se_fn", String::new()),
        ]);
    }
    v.extend(gemm_loop(mq, load_b.trim_end().to_string())?);
    if gather {
        v.push(gather_setup(strided));
    }
    l.module(name, template, &v)
}

/// The element type of a GEMM conv's output binding `y`: vec4 for the pointwise kernel with
/// [`crate::plan::Limits::vec4_stores`] (its quads of four columns never straddle images).
fn y_type(l: &Lower<'_>, pointwise: bool) -> &'static str {
    if pointwise && l.limits.vec4_stores {
        "vec4<f32>"
    } else {
        "f32"
    }
}

/// Sets the element type of binding `y` in `decl`.
fn retype_y(decl: &mut [Binding], ty: &'static str) {
    for d in decl.iter_mut().filter(|d| d.0 == "y") {
        d.2 = ty;
    }
}

/// STORE4 for row `r` of a thread's block: its four outputs through the epilogue (`body`:
/// `epilogue`, `ysplit`, `rowsum`), stored as one vec4.
fn store_quad(name: &str, r: usize, body: &[Hole; 3]) -> Result<String, WgslError> {
    let lanes = unit_lanes("q", "o0", &body[0].1, &body[2].1, 4, 12);
    let holes = [
        ("r", r.to_string()),
        ("i", (r % 4).to_string()),
        ("blk", (r / 4).to_string()),
        ("lanes", lanes),
        ("ysplit", body[1].1.clone()),
    ];
    render(name, STORE4, &holes)
}

/// WGSL applying `epilogue` (then `after`) to each output of `var`, a unit of `per` outputs
/// (an f32, or a vec4 for 4) whose output `j` is `base + j` (`o` in the epilogue), indented by
/// `indent` spaces.
fn unit_lanes(
    var: &str,
    base: &str,
    epilogue: &str,
    after: &str,
    per: usize,
    indent: usize,
) -> String {
    let pad = " ".repeat(indent);
    let mut lanes = String::new();
    for (j, lane) in ["x", "y", "z", "w"].iter().enumerate().take(per) {
        let at = if per == 1 {
            var.to_string()
        } else {
            format!("{var}.{lane}")
        };
        lanes.push_str(&format!("{pad}{{\n"));
        let body = format!("let o = {base} + {j}u;\nvar v = {at};\n{epilogue}\n{after}\n{at} = v;");
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            lanes.push_str(&format!("{pad}    {line}\n"));
        }
        lanes.push_str(&format!("{pad}}}\n"));
    }
    lanes.trim_end().to_string()
}

/// The `gemm_loop` and `as_len` holes: GEMM_LOOP for `mq` A quads per thread, with the
/// kernel's `load_b`.
fn gemm_loop(mq: usize, load_b: String) -> Result<[Hole; 2], WgslError> {
    let looped = render(
        "gemm_loop",
        GEMM_LOOP,
        &[
            ("load_a", load_a(mq)),
            ("load_b", load_b),
            ("gemm_step", gemm_step(mq)?),
            ("stash", stash(mq)),
        ],
    )?;
    Ok([
        ("gemm_loop", looped.trim_end().to_string()),
        ("as_len", u(256 * mq)),
    ])
}

/// conv.wgsl's `gather_setup` hole: the thread's four B columns decoded once (image offset,
/// window origin; a column past the end gets an origin no window reaches), straight-line.
fn gather_setup(strided: bool) -> Hole {
    let mut setup = String::new();
    for j in 0..4 {
        let col = if strided {
            format!("lq + {}u", 16 * j)
        } else {
            format!("lq * 4u + {j}u")
        };
        setup.push_str(&format!(
            "    let col{j} = n0 + {col};\n\
             \x20   let xb{j} = ((col{j} / HW) * CIN + g * CG) * u32(H * W);\n\
             \x20   let iy{j} = select(-65536i, i32(((col{j} / OW) % OH) * SH) - PT, col{j} < NTOT);\n\
             \x20   let ix{j} = i32((col{j} % OW) * SW) - PL;\n"
        ));
    }
    ("gather_setup", setup.trim_end().to_string())
}

/// conv_load_b.wgsl's `gather` hole: the four columns' masked loads of one k-row, straight-line.
fn gather_hole() -> Hole {
    let mut gather = String::new();
    for (j, lane) in ["x", "y", "z", "w"].iter().enumerate() {
        gather.push_str(&format!(
            "            let py{j} = iy{j} + dy;\n\
             \x20           let px{j} = ix{j} + dx;\n\
             \x20           if (u32(py{j}) < u32(H) && u32(px{j}) < u32(W)) {{\n\
             \x20               bv.{lane} = x[xb{j} + coff + u32(py{j}) * u32(W) + u32(px{j})];\n\
             \x20           }}\n"
        ));
    }
    ("gather", gather.trim_end().to_string())
}

/// The `se_fn` and `se_head` holes of a split-K GEMM conv with [`Gates::Tail`]: the SE hidden
/// layer (`se_hidden`, for `n` images) in the last z layer of workgroups (a tile grid; the conv
/// is not grouped), which return before the GEMM; `wz`, the workgroup's z index.
fn se_head(t: &SeTail, n: usize, [tiles_x, tiles_y]: [usize; 2]) -> [Hole; 2] {
    let per_layer = tiles_x * tiles_y;
    let units = t.hidden.units.max(1);
    let head = format!(
        "    if (wg.z == KS) {{\n\
         \x20       // The SE block folded into this conv: its hidden layer, {units} call(s) per image.\n\
         \x20       for (var e = wg.y * {tiles_x}u + wg.x; e < {total}u; e = e + {per_layer}u) {{\n\
         \x20           se_hidden(e % {units}u, e / {units}u, lid.y * 16u + lid.x);\n\
         \x20       }}\n\
         \x20       return;\n\
         \x20   }}\n\
         \x20   let wz = wg.z;",
        total = units * n,
    );
    [
        ("se_fn", t.hidden.code.trim_end().to_string()),
        ("se_head", head),
    ]
}

/// Rows of a GEMM conv's output tile in blocks of 64: 2 (each thread 8 x 4 outputs: every B
/// quad read from workgroup memory feeds twice the FMAs) for pointwise convs with 128 output
/// channels or more and K >= 128 that neither squeeze nor apply a deferred SE scale (`extra`):
/// on an H100 those ran 5-17% faster, those with K = 64 4% slower, and the gathering 3x3
/// kernel with 128-row tiles 6x slower, and so was SE-ResNet-50 unfolded, whose 1x1 convs apply
/// an SE scale as they load. 1 otherwise, and for the squeeze kernels (row sums of 64).
fn tile_rows(l: &Lower<'_>, pointwise: bool, mg: usize, cg: usize, extra: bool) -> usize {
    let wide = pointwise && mg >= 128 && cg >= 128 && !extra;
    if l.limits.wide_tiles && wide { 2 } else { 1 }
}

/// [`split_k`] for a GEMM conv of `ntot` columns, `m` output channels, `tiles_m` row tiles (all
/// groups) and K padded to `kpad`, within the device's binding size for the partial products.
/// (Parts of 32 for a conv an SE block is folded into, so that the 64-deep conv3s of
/// SE-ResNet-50's layer 1 would split and need no SE dispatch, ran 3% slower at batch 1 on an
/// H100: the split cost more than the two dispatches.)
fn k_split(l: &Lower<'_>, [ntot, m, tiles_m, kpad]: [usize; 4]) -> (usize, usize) {
    let tiles = ntot.div_ceil(64) * tiles_m;
    // The partial products must fit one binding: fewer parts, or none, where they would not.
    let max_bytes = l
        .limits
        .max_storage_buffer_binding_size
        .min(l.limits.max_buffer_size);
    let max_parts = usize::try_from(max_bytes / 4).unwrap_or(usize::MAX) / (ntot * m).max(1);
    split_k(tiles, kpad, l.limits.min_workgroups as usize, max_parts)
}

/// K splits of a linear, ungrouped 1x1 conv with a constant weight that an SE block is folded
/// into, as [`lower`] will choose them with [`Gates::Tail`] (and no deferred SE scale): 1 for
/// none, and then it splits none without either.
pub(crate) fn splits(l: &Lower<'_>, node: &Node, c: &Conv) -> Result<usize, WgslError> {
    let xs = l.shape(node.inputs[0])?;
    let ys = l.shape(node.outputs[0])?;
    let (&[n, cin, h, w], &[_, m, oh, ow]) = (&xs[..], &ys[..]) else {
        return Err(unsupported(node, "the input must be 4-D"));
    };
    if c.group != 1 {
        return Ok(1);
    }
    let pointwise = c.strides == [1, 1] && c.pads == [0; 4] && (h * w).is_multiple_of(4);
    let squeeze = l.squeezed.contains_key(&node.outputs[0]);
    let mq = tile_rows(l, pointwise, m, cin, squeeze);
    let kpad = cin.next_multiple_of(16);
    Ok(k_split(l, [n * oh * ow, m, m.div_ceil(64 * mq), kpad]).0)
}

/// The `gemm_step` hole: GEMM_STEP with straight-line FMAs for `mq` A quads (loops over the
/// quads measured 4-5x slower on an H100: the accumulators left registers). (`fma()` instead
/// of multiply and add measured the same; see BENCHMARKS.md.)
fn gemm_step(mq: usize) -> Result<String, WgslError> {
    let mut fma = String::new();
    for q in 0..mq {
        fma.push_str(&format!(
            "                let a{q} = As[(kk * MQ + {q}u) * 16u + ty];\n"
        ));
        for (r, lane) in ["x", "y", "z", "w"].iter().enumerate() {
            let i = q * 4 + r;
            fma.push_str(&format!(
                "                acc[{i}] = acc[{i}] + a{q}.{lane} * bq;\n"
            ));
        }
    }
    let step = render(
        "gemm_step",
        GEMM_STEP,
        &[("fma", fma.trim_end().to_string())],
    )?;
    Ok(step.trim_end().to_string())
}

/// The `load_a` hole: each thread's `mq` weight quads of the A tile for k-row `lk` into
/// registers `ra`, from `wp` row offset `wrow`.
fn load_a(mq: usize) -> String {
    (0..mq)
        .map(|q| format!("            ra[{q}] = wp[wrow + {}u];", q * 16))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `stash` hole: the thread's A quads from registers into workgroup memory.
fn stash(mq: usize) -> String {
    (0..mq)
        .map(|q| format!("        As[(lk * MQ + {q}u) * 16u + lq] = ra[{q}];"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The squeeze part of a kernel laid out by planes in chunks (`splitk_squeeze.wgsl`,
/// `wino_out.wgsl`): a `partials` buffer of `len` sums (`chunks` per plane) added to `decl` /
/// `binds` and recorded as node's output squeeze, and the code (`splitk_squeeze_end.wgsl`)
/// that writes each plane's lane sum `s` (over `threads` lanes) there.
pub(crate) fn plane_squeeze(
    l: &mut Lower<'_>,
    node: &Node,
    len: usize,
    [chunks, threads]: [usize; 2],
    (decl, binds): (&mut Vec<Binding>, &mut Vec<usize>),
) -> Result<String, WgslError> {
    let partials = l.temp(&format!("{}.partials", node.name), len)?;
    decl.push(("partials", true, "f32"));
    binds.push(partials);
    l.squeezed.insert(
        node.outputs[0],
        Some(Partials {
            buf: partials,
            tiles: chunks,
            parts: 0,
        }),
    );
    let sum = tree_sum(l.limits.tree_radix, ["red", "lid.x", "s", "lane"], threads)?;
    let code = render("splitk_squeeze_end", SPLITK_SQUEEZE_END, &[("sum", sum)])?;
    Ok(code.trim_end().to_string())
}

/// A grouped pointwise conv with no epilogue on the GEMM kernel (`conv1x1.wgsl`): `y[g][m][n]
/// = sum_c w[g][m][c] x[g][c][n]` for `groups` groups of `cg -> mg` channels over `hw` columns
/// (a multiple of 4), weight `w` (`[groups * mg][cg]`, packed here, called `label`), buffers
/// `[x, y]`. Never splits K (for winograd.rs, whose products have enough tiles).
pub(crate) fn pointwise_gemm(
    l: &mut Lower<'_>,
    node: &Node,
    [x, y]: [usize; 2],
    (w, label): (&[f32], &str),
    [groups, cg, mg, hw]: [usize; 4],
) -> Result<(), WgslError> {
    let mq = tile_rows(l, true, mg, cg, false);
    let wbuf = l.weight(label, pack(w, groups, mg, cg, mq))?;
    let decl = [
        ("x4", false, "vec4<f32>"),
        ("wp", false, "vec4<f32>"),
        ("y", true, y_type(l, true)),
    ];
    let (_, _, holes) = pointwise_holes(None)?;
    let kpad = cg.next_multiple_of(16);
    let mut v = vec![
        ("bindings", bindings(&decl)),
        ("hw", u(hw)),
        ("epilogue", String::new()),
    ];
    v.extend(holes);
    v.extend([
        ("cin", u(groups * cg)),
        ("cg", u(cg)),
        ("mg", u(mg)),
        ("mpad", u(mg.next_multiple_of(64 * mq))),
        ("mq", u(mq)),
        ("acc_len", u(4 * mq)),
        ("k", u(cg)),
        ("kpad", u(kpad)),
        ("ntot", u(hw)),
        ("cout", u(groups * mg)),
        ("ks", u(1)),
        ("kch", u(kpad)),
        ("ysplit", String::new()),
    ]);
    let module = gemm_module(l, "conv1x1", POINTWISE, v, mq)?;
    let wgs = [hw.div_ceil(64), mg.div_ceil(64 * mq), groups].map(|d| d as u32);
    l.dispatch(node, module, vec![x, wbuf, y], wgs)
}

/// A storage binding's declaration: name, writable, element type.
pub(crate) type Binding = (&'static str, bool, &'static str);
/// A template hole and its value.
pub(crate) type Hole = (&'static str, String);
/// Extra bindings (declarations and buffers) and the holes that use them.
type Extras = (Vec<Binding>, Vec<usize>, Vec<Hole>);

/// The optional holes of conv1x1.wgsl, with the extra bindings they need: a deferred SE
/// scale applied to each loaded quad `bv` (channel `kb`, image `nq / HW`, quad index `xi`);
/// no squeeze.
fn pointwise_holes(d: Option<&Deferred>) -> Result<Extras, WgslError> {
    let mut decl = Vec::new();
    let mut binds = Vec::new();
    let mut code = String::new();
    if let Some(d) = d {
        decl.push(("gates", false, "f32"));
        binds.push(d.gates);
        let mut load_res = String::new();
        if let Some(r) = d.res {
            decl.push(("sres", false, "vec4<f32>"));
            binds.push(r);
            load_res = "            let rq = sres[xi];".to_string();
        }
        decl.push(("ymat", true, "vec4<f32>"));
        binds.push(d.y);
        let epilogue: String = emit_with(&d.steps, "rq[j]")?
            .lines()
            .map(|line| format!("                {line}\n"))
            .collect();
        code = render(
            "conv1x1_se_prologue",
            SE_PROLOGUE,
            &[
                ("load_res", load_res),
                ("epilogue", epilogue.trim_end().to_string()),
            ],
        )?
        .trim_end()
        .to_string();
    }
    let mut holes = vec![("prologue", code)];
    holes.extend(squeeze_holes(0));
    Ok((decl, binds, holes))
}

/// Most images one squeeze tile may meet (row sums kept in registers per image).
const MAX_PARTS: usize = 4;

/// The most images any of the 64-column tiles over `ntot` columns (`hw` per image) meets.
fn tile_parts(ntot: usize, hw: usize) -> usize {
    let hw = hw.max(1);
    (0..ntot.div_ceil(64))
        .map(|t| ((t * 64 + 63).min(ntot.saturating_sub(1))) / hw - (t * 64) / hw + 1)
        .max()
        .unwrap_or(1)
}

/// The squeeze holes shared by conv.wgsl and conv1x1.wgsl (empty for `parts == 0`): each thread
/// sums its outputs per row and per image of the tile (`rs0`.. in registers), then, one image
/// at a time, the workgroup adds the 16 row sums of each channel in `red` and writes
/// `partials[(tile * PARTS + part) * COUT + c]`.
fn squeeze_holes(parts: usize) -> [Hole; 4] {
    if parts == 0 {
        return [
            ("squeeze_decl", String::new()),
            ("rowsum_init", String::new()),
            ("rowsum", String::new()),
            ("squeeze_end", String::new()),
        ];
    }
    let decl = format!(
        "var<workgroup> red: array<f32, 1024>; // [64 m][16 tx] row sums of one image\n\
         const PARTS: u32 = {parts}u;          // images a tile meets at most\n"
    );
    let mut init = "    let img0 = n0 / HW;\n".to_string();
    for p in 0..parts {
        init.push_str(&format!("    var rs{p} = vec4<f32>(0.0);\n"));
    }
    let mut sum = String::new();
    if parts == 1 {
        sum.push_str("            rs0[i] = rs0[i] + v;\n");
    } else {
        sum.push_str("            let part = n / HW - img0;\n");
        for p in 0..parts {
            let open = match p {
                0 => "            if (part == 0u) {\n".to_string(),
                _ if p + 1 == parts => " else {\n".to_string(),
                _ => format!(" else if (part == {p}u) {{\n"),
            };
            sum.push_str(&open);
            sum.push_str(&format!(
                "                rs{p}[i] = rs{p}[i] + v;\n            }}"
            ));
        }
        sum.push('\n');
    }
    let mut end = String::new();
    for p in 0..parts {
        end.push_str(&format!(
            "    workgroupBarrier();\n\
             \x20   for (var i = 0u; i < 4u; i = i + 1u) {{\n\
             \x20       red[(ty * 4u + i) * 16u + tx] = rs{p}[i];\n\
             \x20   }}\n\
             \x20   workgroupBarrier();\n\
             \x20   if (tid < 64u && m0 + tid < MG) {{\n\
             \x20       var s = 0.0;\n\
             \x20       for (var t = 0u; t < 16u; t = t + 1u) {{\n\
             \x20           s = s + red[tid * 16u + t];\n\
             \x20       }}\n\
             \x20       partials[(wg.x * PARTS + {p}u) * COUT + g * MG + m0 + tid] = s;\n\
             \x20   }}\n"
        ));
    }
    [
        ("squeeze_decl", decl),
        ("rowsum_init", init.trim_end().to_string()),
        ("rowsum", sum.trim_end().to_string()),
        ("squeeze_end", end.trim_end().to_string()),
    ]
}

/// Frees what a deferred SE scale kept alive until its conv ran.
fn release(l: &mut Lower<'_>, deferred: Option<Deferred>) {
    for t in deferred.map(|d| d.temps).unwrap_or_default() {
        l.release(t);
    }
}

/// The window holes of conv.wgsl (the first eight are grouped.wgsl's too).
fn window(
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    c: &Conv,
) -> [(&'static str, String); 12] {
    [
        ("h", i(h)),
        ("w", i(w)),
        ("oh", u(oh)),
        ("ow", u(ow)),
        ("kh", u(kh)),
        ("kw", u(kw)),
        ("pt", i(c.pads[0])),
        ("pl", i(c.pads[1])),
        ("sh", u(c.strides[0])),
        ("sw", u(c.strides[1])),
        ("dh", u(c.dilations[0])),
        ("dw", u(c.dilations[1])),
    ]
}

/// How to split K for a GEMM conv of `tiles` output tiles: `(splits, K per split)`. A conv with
/// fewer tiles than `min_workgroups` splits K (each part at least 64 deep, at most 16 parts,
/// and at most `max_parts`, the partial products that fit one binding) to reach about twice
/// that many workgroups; `(1, kpad)` leaves it whole.
fn split_k(tiles: usize, kpad: usize, min_workgroups: usize, max_parts: usize) -> (usize, usize) {
    if tiles >= min_workgroups || kpad < 128 || max_parts < 2 {
        return (1, kpad);
    }
    let want = (2 * min_workgroups).div_ceil(tiles.max(1));
    let ks = want.min(kpad / 64).min(max_parts).clamp(1, 16);
    let kch = kpad.div_ceil(ks).next_multiple_of(16);
    (kpad.div_ceil(kch), kch)
}

/// Depthwise, or grouped with so few channels per group that a 64-wide GEMM tile would
/// mostly compute padding: the direct kernel does less work.
fn narrow_groups(groups: usize, cg: usize, mg: usize) -> bool {
    groups > 1 && mg <= 16 && cg <= 16
}

/// Repacks `w[g*mg + m][k]` as `[g][k padded to 16][m padded to 64 * mq]`, zero-filled, so the
/// kernel's weight tile loads (tiles of `64 * mq` rows) are aligned `vec4`s along `m` with no
/// bounds checks.
fn pack(w: &[f32], groups: usize, mg: usize, k: usize, mq: usize) -> Arc<[f32]> {
    let (kpad, mpad) = (k.next_multiple_of(16), mg.next_multiple_of(64 * mq));
    let mut out = vec![0f32; groups * kpad * mpad];
    for g in 0..groups {
        for m in 0..mg {
            for kk in 0..k {
                out[(g * kpad + kk) * mpad + m] = w[(g * mg + m) * k + kk];
            }
        }
    }
    Arc::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_k_reaches_the_workgroup_target_within_its_bounds() {
        // 8 tiles, K = 4608 (layer4's 3x3 at batch 1): 16 parts of 288.
        assert_eq!(split_k(8, 4608, 512, usize::MAX), (16, 288));
        // Enough tiles, or too shallow a K: no split.
        assert_eq!(split_k(600, 4608, 512, usize::MAX), (1, 4608));
        assert_eq!(split_k(8, 112, 512, usize::MAX), (1, 112));
        // Each part at least 64 deep; parts limited by what fits one binding.
        assert_eq!(split_k(8, 256, 512, usize::MAX), (4, 64));
        assert_eq!(split_k(8, 4608, 512, 3), (3, 1536));
        assert_eq!(split_k(8, 4608, 512, 1), (1, 4608));
        // Every split covers K exactly once.
        for (tiles, kpad) in [(1, 160), (7, 1024), (100, 2304), (300, 4608)] {
            let (ks, kch) = split_k(tiles, kpad, 512, usize::MAX);
            assert!(kch % 16 == 0 && ks * kch >= kpad && (ks - 1) * kch < kpad);
        }
    }

    #[test]
    fn pack_transposes_and_pads() {
        // 2 groups of 1 output channel, k = 2: w = [[1, 2], [3, 4]].
        let p = pack(&[1.0, 2.0, 3.0, 4.0], 2, 1, 2, 1);
        assert_eq!(p.len(), 2 * 16 * 64);
        let at = |g: usize, k: usize, m: usize| p[(g * 16 + k) * 64 + m];
        assert_eq!(
            [at(0, 0, 0), at(0, 1, 0), at(1, 0, 0), at(1, 1, 0)],
            [1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(p.iter().filter(|&&v| v != 0.0).count(), 4);
        // 128-row tiles pad the rows to 128.
        let p = pack(&[1.0, 2.0, 3.0, 4.0], 2, 1, 2, 2);
        assert_eq!((p.len(), p[128], p[16 * 128]), (2 * 16 * 128, 2.0, 3.0));
    }
}
