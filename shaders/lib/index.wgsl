// ---- shared: index arithmetic (shaders/lib/index.wgsl) ----------------------------------------
// n / d for n < 2^31 and d >= 1, exactly. Kernels that turn a flat index into coordinates
// divide per element; a vector u32 division has no SIMD instruction on CPU adapters (lavapipe
// and llvmpipe split it into one scalar division per lane, ~10x this function's cost), and GPUs
// expand it into a long instruction sequence too. So for d < 2^23 the quotient comes from f32
// arithmetic: q0 = n * (1/d) is within 3e-7 n + 1 of n / d, so its remainder r0
// (|r0| < 650 + d) is exact in f32; one refinement brings the quotient within 1 and the last
// comparison makes it exact. Larger d divide in u32: d is uniform in every caller, so that
// branch never diverges, whereas a test of n would make CPU adapters run both sides.
// n < 2^31 holds for every element index: a storage binding is under 4 GiB, so under 2^30
// four-byte elements.
fn div_u32(n: u32, d: u32) -> u32 {
    if (d >= 0x800000u) {
        return n / d;
    }
    let rcp = 1.0 / f32(d);
    let q0 = u32(f32(n) * rcp);
    let r0 = bitcast<i32>(n - q0 * d);
    var q = i32(q0) + i32(floor(f32(r0) * rcp));
    let r = i32(n) - q * i32(d);
    if (r < 0) {
        q -= 1;
    } else if (r >= i32(d)) {
        q += 1;
    }
    return u32(q);
}
// ---- the index walk ----------------------------------------------------------------------------
// Every strided kernel turns a flat index i, row-major in a shape of rank <= 8, into offsets
// into its operands: peel the coordinates off from the innermost dim out (`index_peel`), each
// times the operand's element stride along that dim. Shapes and strides are 8 slots packed as
// array<vec4<u32>, 2> (slot k at [k >> 2][k & 3]), as in every kernel's Params; slots at and
// past the rank are never read. Strides are u32 and the sums wrap, so a negative i32 stride
// bitcast to u32 adds as a signed one would.
//
// Core WGSL cannot pass a pointer to uniform memory to a function, so `index_offset*` take the
// arrays by value. That costs: on lavapipe a kernel through `index_offset*` ran 1.3-1.5x
// slower than with its own loop over the uniform fields (broadcast add and mul, compare, where
// and slice alike; 2.5x with dynamic indexing of the array values, which spills them to
// scratch memory; a struct of two vec4 in place of the array is no faster). So only the cold
// kernels (compare, where, slice) call `index_offset*`; the hot ones (binary, permute, reduce)
// and those that treat one dim apart (gather_elements, scatter_add, slice_backward) write the
// loop over their uniform fields and call `index_peel` for each dim, at no cost.

// Slot k of a packed array, indexing the array by constants only (see above).
fn index_slot(a: array<vec4<u32>, 2>, k: u32) -> u32 {
    return select(a[0], a[1], k >= 4u)[k & 3u];
}

// The innermost coordinate of *rem along a dim of size n; *rem becomes the index over the
// dims outside it.
fn index_peel(rem: ptr<function, u32>, n: u32) -> u32 {
    let q = div_u32(*rem, n);
    let c = *rem - q * n;
    *rem = q;
    return c;
}

// The offsets of flat index i (row-major in `shape`, rank `rank`) into three operands with
// strides sa, sb and sc: the one walk, which the one- and two-operand forms below share.
fn index_offset3(
    i: u32,
    rank: u32,
    shape: array<vec4<u32>, 2>,
    sa: array<vec4<u32>, 2>,
    sb: array<vec4<u32>, 2>,
    sc: array<vec4<u32>, 2>,
) -> vec3<u32> {
    var rem = i;
    var off = vec3<u32>(0u);
    for (var k = rank; k > 0u; k--) {
        let d = k - 1u;
        let c = index_peel(&rem, index_slot(shape, d));
        off += c * vec3<u32>(index_slot(sa, d), index_slot(sb, d), index_slot(sc, d));
    }
    return off;
}

// The offsets of flat index i into two operands (the repeated product folds away).
fn index_offset2(
    i: u32,
    rank: u32,
    shape: array<vec4<u32>, 2>,
    sa: array<vec4<u32>, 2>,
    sb: array<vec4<u32>, 2>,
) -> vec2<u32> {
    return index_offset3(i, rank, shape, sa, sb, sb).xy;
}

// The offset of flat index i into one operand.
fn index_offset(i: u32, rank: u32, shape: array<vec4<u32>, 2>, s: array<vec4<u32>, 2>) -> u32 {
    return index_offset3(i, rank, shape, s, s, s).x;
}

// ---- end of shaders/lib/index.wgsl ------------------------------------------------------------
