import sys
# matmul_sg entry generator: TM = 32 rows, TNV vec4 column chunks per invocation.
TNV=int(sys.argv[1]); name=sys.argv[2]
TM=32; G=TM//8
R=f"Row{TNV}"
o=[]; w=o.append
w("@compute @workgroup_size(8)")
w(f"fn {name}(")
w("    @builtin(workgroup_id) wid: vec3<u32>,")
w("    @builtin(num_workgroups) nwg: vec3<u32>,")
w("    @builtin(local_invocation_index) lid: u32,")
w("    @builtin(subgroup_invocation_id) lane: u32,")
w(") {")
w("    let t = tile_of(wid.y * nwg.x + wid.x);")
w("    if (!t.live) {")
w("        return;")
w("    }")
w("    let m0 = t.tm * TM;")
w(f"    let c0 = t.tn * {TNV * 8}u + lid; // the invocation's first column chunk (4 columns)")
w("    let n4 = p.n / 4u;")
w("    let k4 = p.k / 4u;")
w("    let m4 = p.m / 4u;")
w("    let last_c = n4 - 1u;")
w("    // op(A): this lane's rows (TA = 0: rows 8 g + lane at k = 0) or row chunk (TA = 1).")
for g in range(G):
    w(f"    let ra{g} = a_row(t.a_off, m0 + {8*g}u + lane);")
w("    let rt = t.a_off / 4u + min(m0 / 4u + lane, max(m4, 1u) - 1u);")
w("    // op(B): the invocation's column chunks (TB = 0), or its columns' rows of B (TB = 1).")
for j in range(TNV):
    w(f"    let cb{j} = t.b_off / 4u + min(c0 + {8*j}u, last_c);")
for j in range(TNV):
    for c in range(4):
        w(f"    let bt{j}_{c} = b_col(t.b_off, 4u * (c0 + {8*j}u) + {c}u);")
for i in range(TM):
    w(f"    var r{i} = {R}();")
w("    var kb = 0u; // vec4 offset of B's row k = 4 kk (TB = 0)")
w("    for (var kk = 0u; kk < k4; kk++) {")
w("        // op(B) at k = 4 kk + s, s = 0..3, over the invocation's columns.")
for s in range(4):
    w(f"        var b{s}: {R};")
w("        if (TB == 0u) {")
for s in range(4):
    off = f" + {s}u * n4" if s else ""
    args = ", ".join(f"bv[cb{j} + kb{off}]" for j in range(TNV))
    w(f"            b{s} = {R}({args});")
w("        } else {")
for j in range(TNV):
    for c in range(4):
        w(f"            let q{j}_{c} = bv[bt{j}_{c} + kk];")
for s in range(4):
    comp="xyzw"[s]
    args = ", ".join("vec4<f32>(" + ", ".join(f"q{j}_{c}.{comp}" for c in range(4)) + ")" for j in range(TNV))
    w(f"            b{s} = {R}({args});")
w("        }")
w("        // op(A) at k = 4 kk + 0..3: each lane loads its share (TA = 0: g = rows 8 g + lane;")
w("        // TA = 1: g = k-step, lane = row chunk), subgroupBroadcast hands it to every lane.")
for g in range(4):
    w(f"        var g{g}: vec4<f32>;")
w("        if (TA == 0u) {")
for g in range(G):
    w(f"            g{g} = av[ra{g} + kk];")
w("        } else {")
w("            let at = rt + 4u * kk * m4;")
for s in range(4):
    off = f" + {s}u * m4" if s else ""
    w(f"            g{s} = av[at{off}];")
w("        }")
for i in range(TM):
    c="xyzw"[i%4]
    w(f"        var a{i} = vec4<f32>(subgroupBroadcast(g0.{c}, {i//4}u), subgroupBroadcast(g1.{c}, {i//4}u), subgroupBroadcast(g2.{c}, {i//4}u), subgroupBroadcast(g3.{c}, {i//4}u));")
    w(f"        if (TA == 0u) {{")
    w(f"            a{i} = subgroupBroadcast(g{i//8}, {i%8}u);")
    w(f"        }}")
    w(f"        r{i} = step{TNV}(r{i}, a{i}, b0, b1, b2, b3);")
w("        kb += p.n;")
w("    }")
w("    let c_row = t.batch * p.m;")
for i in range(TM):
    w(f"    store{TNV}(c_row, m0 + {i}u, c0, r{i});")
w("}")
print("\n".join(o))
