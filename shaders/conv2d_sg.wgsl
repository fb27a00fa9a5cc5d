// ---- conv2d_sg: conv2d for adapters whose subgroups are exactly 8 lanes (appended to
// shaders/conv2d.wgsl as the module "conv2d_sg"; src/kernels/conv.rs picks it).
//
// The same 12 pixels x 16 channels per invocation as `conv2d`, but the 16 weights of each
// (c, kh, kw) step are loaded once per subgroup instead of once per lane: lane l loads the
// weights of in-tile channels l and l + 8, and subgroupBroadcast hands each to every lane (on
// lavapipe, whose loads are per-lane gathers even for one address, 2 loads + 16 lane extracts
// replace 16 loads). Every lane stays active to the end (a lane past the last pixel computes on
// clamped addresses and stores nothing), so the broadcasts always read live lanes; the only
// early return depends on the workgroup alone.
@compute @workgroup_size(64)
fn conv2d_sg(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let t = tile(wid, nwg);
    if (t.phase >= p.ph_h * p.ph_w) {
        return;
    }
    let q0 = t.tq * 768u + lid * 12u;
    let qa = quad(q0, t.g, t.rh, t.rw);
    let qb = quad(q0 + 4u, t.g, t.rh, t.rw);
    let qc = quad(q0 + 8u, t.g, t.rh, t.rw);
    let mo = t.mt * 16u;
    // This lane's two weight rows: in-tile channels lane and lane + 8.
    let wl = weight_base(t.g, mo + lane);
    let wh = weight_base(t.g, mo + 8u + lane);
    var acc0 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc1 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc2 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc3 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc4 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc5 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc6 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc7 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc8 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc9 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc10 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc11 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc12 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc13 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc14 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc15 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let hw = p.h * p.w;
    for (var kh = 0u; kh < p.kh; kh++) {
        let sh = shift(p.base_h, t.rh, kh, p.kstep_h, p.dv_h, p.unshift_h);
        if (sh == NO_TAP) {
            continue;
        }
        for (var kw = 0u; kw < p.kw; kw++) {
            let sw = shift(p.base_w, t.rw, kw, p.kstep_w, p.dv_w, p.unshift_w);
            if (sw == NO_TAP) {
                continue;
            }
            let ta = tap(qa, sh, sw);
            let tb = tap(qb, sh, sw);
            let tc = tap(qc, sh, sw);
            var wo = kh * p.kw + kw;
            var co = 0u;
            for (var c = 0u; c < p.cg; c++) {
                let v = Px12(load_quad(ta, co), load_quad(tb, co), load_quad(tc, co));
                let lo = wt[wl + wo];
                let hi = wt[wh + wo];
                acc0 = fma12(acc0, subgroupBroadcast(lo, 0u), v);
                acc1 = fma12(acc1, subgroupBroadcast(lo, 1u), v);
                acc2 = fma12(acc2, subgroupBroadcast(lo, 2u), v);
                acc3 = fma12(acc3, subgroupBroadcast(lo, 3u), v);
                acc4 = fma12(acc4, subgroupBroadcast(lo, 4u), v);
                acc5 = fma12(acc5, subgroupBroadcast(lo, 5u), v);
                acc6 = fma12(acc6, subgroupBroadcast(lo, 6u), v);
                acc7 = fma12(acc7, subgroupBroadcast(lo, 7u), v);
                acc8 = fma12(acc8, subgroupBroadcast(hi, 0u), v);
                acc9 = fma12(acc9, subgroupBroadcast(hi, 1u), v);
                acc10 = fma12(acc10, subgroupBroadcast(hi, 2u), v);
                acc11 = fma12(acc11, subgroupBroadcast(hi, 3u), v);
                acc12 = fma12(acc12, subgroupBroadcast(hi, 4u), v);
                acc13 = fma12(acc13, subgroupBroadcast(hi, 5u), v);
                acc14 = fma12(acc14, subgroupBroadcast(hi, 6u), v);
                acc15 = fma12(acc15, subgroupBroadcast(hi, 7u), v);
                co += hw;
                wo += p.w_c;
            }
        }
    }
    store12(t.g, mo, acc0, qa, qb, qc);
    store12(t.g, mo + 1u, acc1, qa, qb, qc);
    store12(t.g, mo + 2u, acc2, qa, qb, qc);
    store12(t.g, mo + 3u, acc3, qa, qb, qc);
    store12(t.g, mo + 4u, acc4, qa, qb, qc);
    store12(t.g, mo + 5u, acc5, qa, qb, qc);
    store12(t.g, mo + 6u, acc6, qa, qb, qc);
    store12(t.g, mo + 7u, acc7, qa, qb, qc);
    store12(t.g, mo + 8u, acc8, qa, qb, qc);
    store12(t.g, mo + 9u, acc9, qa, qb, qc);
    store12(t.g, mo + 10u, acc10, qa, qb, qc);
    store12(t.g, mo + 11u, acc11, qa, qb, qc);
    store12(t.g, mo + 12u, acc12, qa, qb, qc);
    store12(t.g, mo + 13u, acc13, qa, qb, qc);
    store12(t.g, mo + 14u, acc14, qa, qb, qc);
    store12(t.g, mo + 15u, acc15, qa, qb, qc);
}
