// Tail of shaders/attention.wgsl for adapters with subgroups of exactly 8 invocations (Mesa's
// CPU emulators on AVX2); src/kernels/mod.rs appends it to make the "attention_sg" module.
//
// In the hot loops every invocation of a subgroup reads the same k/v (q/dO) row. On lavapipe a
// storage load is a per-lane scalar loop, so instead of 8 lanes each loading all of a row's
// HD4 <= 32 vec4 chunks, lane l loads chunks l, l + 8, l + 16, l + 24 and subgroupBroadcast (an
// element extract on a CPU) hands each chunk to every lane: HD4 / 8 loads per lane instead of
// HD4. Measured on lavapipe (forward, batch 4, 8 heads, seq 256, head dim 64): 10.2 -> 20
// GFLOP/s per CPU-second.
// Each broadcast sits under a test of the override HD4 / HDV4, so pipelines of narrow heads
// keep only the chunks they use. All calls are in uniform control flow (loops bounded by
// uniforms, after returns that depend only on the workgroup id).

// The invocation's lane in its subgroup (the rank among the subgroup's active invocations;
// every invocation is active where this is called).
fn lane_id(lid: u32) -> u32 {
    return subgroupExclusiveAdd(1u);
}

// A q row (as fetch_q), each lane loading an eighth of it.
fn fetch_q_shared(x: ptr<function, Row>, row: u32, lane: u32) {
    let base = row * p.nd4;
    let last = max(p.nd4, 1u) - 1u;
    var l0 = vec4<f32>(0.0);
    var l1 = vec4<f32>(0.0);
    var l2 = vec4<f32>(0.0);
    var l3 = vec4<f32>(0.0);
    if (HD4 > 0u) {
        l0 = select(vec4<f32>(0.0), q[base + min(0u + lane, last)], 0u + lane < p.nd4);
    }
    if (HD4 > 8u) {
        l1 = select(vec4<f32>(0.0), q[base + min(8u + lane, last)], 8u + lane < p.nd4);
    }
    if (HD4 > 16u) {
        l2 = select(vec4<f32>(0.0), q[base + min(16u + lane, last)], 16u + lane < p.nd4);
    }
    if (HD4 > 24u) {
        l3 = select(vec4<f32>(0.0), q[base + min(24u + lane, last)], 24u + lane < p.nd4);
    }
    if (HD4 > 0u) {
        (*x)[0] = subgroupBroadcast(l0, 0u);
        (*x)[1] = subgroupBroadcast(l0, 1u);
        (*x)[2] = subgroupBroadcast(l0, 2u);
        (*x)[3] = subgroupBroadcast(l0, 3u);
        (*x)[4] = subgroupBroadcast(l0, 4u);
        (*x)[5] = subgroupBroadcast(l0, 5u);
        (*x)[6] = subgroupBroadcast(l0, 6u);
        (*x)[7] = subgroupBroadcast(l0, 7u);
    }
    if (HD4 > 8u) {
        (*x)[8] = subgroupBroadcast(l1, 0u);
        (*x)[9] = subgroupBroadcast(l1, 1u);
        (*x)[10] = subgroupBroadcast(l1, 2u);
        (*x)[11] = subgroupBroadcast(l1, 3u);
        (*x)[12] = subgroupBroadcast(l1, 4u);
        (*x)[13] = subgroupBroadcast(l1, 5u);
        (*x)[14] = subgroupBroadcast(l1, 6u);
        (*x)[15] = subgroupBroadcast(l1, 7u);
    }
    if (HD4 > 16u) {
        (*x)[16] = subgroupBroadcast(l2, 0u);
        (*x)[17] = subgroupBroadcast(l2, 1u);
        (*x)[18] = subgroupBroadcast(l2, 2u);
        (*x)[19] = subgroupBroadcast(l2, 3u);
        (*x)[20] = subgroupBroadcast(l2, 4u);
        (*x)[21] = subgroupBroadcast(l2, 5u);
        (*x)[22] = subgroupBroadcast(l2, 6u);
        (*x)[23] = subgroupBroadcast(l2, 7u);
    }
    if (HD4 > 24u) {
        (*x)[24] = subgroupBroadcast(l3, 0u);
        (*x)[25] = subgroupBroadcast(l3, 1u);
        (*x)[26] = subgroupBroadcast(l3, 2u);
        (*x)[27] = subgroupBroadcast(l3, 3u);
        (*x)[28] = subgroupBroadcast(l3, 4u);
        (*x)[29] = subgroupBroadcast(l3, 5u);
        (*x)[30] = subgroupBroadcast(l3, 6u);
        (*x)[31] = subgroupBroadcast(l3, 7u);
    }
}

// A k row (as fetch_k), each lane loading an eighth of it.
fn fetch_k_shared(x: ptr<function, Row>, row: u32, lane: u32) {
    let base = row * p.nd4;
    let last = max(p.nd4, 1u) - 1u;
    var l0 = vec4<f32>(0.0);
    var l1 = vec4<f32>(0.0);
    var l2 = vec4<f32>(0.0);
    var l3 = vec4<f32>(0.0);
    if (HD4 > 0u) {
        l0 = select(vec4<f32>(0.0), k[base + min(0u + lane, last)], 0u + lane < p.nd4);
    }
    if (HD4 > 8u) {
        l1 = select(vec4<f32>(0.0), k[base + min(8u + lane, last)], 8u + lane < p.nd4);
    }
    if (HD4 > 16u) {
        l2 = select(vec4<f32>(0.0), k[base + min(16u + lane, last)], 16u + lane < p.nd4);
    }
    if (HD4 > 24u) {
        l3 = select(vec4<f32>(0.0), k[base + min(24u + lane, last)], 24u + lane < p.nd4);
    }
    if (HD4 > 0u) {
        (*x)[0] = subgroupBroadcast(l0, 0u);
        (*x)[1] = subgroupBroadcast(l0, 1u);
        (*x)[2] = subgroupBroadcast(l0, 2u);
        (*x)[3] = subgroupBroadcast(l0, 3u);
        (*x)[4] = subgroupBroadcast(l0, 4u);
        (*x)[5] = subgroupBroadcast(l0, 5u);
        (*x)[6] = subgroupBroadcast(l0, 6u);
        (*x)[7] = subgroupBroadcast(l0, 7u);
    }
    if (HD4 > 8u) {
        (*x)[8] = subgroupBroadcast(l1, 0u);
        (*x)[9] = subgroupBroadcast(l1, 1u);
        (*x)[10] = subgroupBroadcast(l1, 2u);
        (*x)[11] = subgroupBroadcast(l1, 3u);
        (*x)[12] = subgroupBroadcast(l1, 4u);
        (*x)[13] = subgroupBroadcast(l1, 5u);
        (*x)[14] = subgroupBroadcast(l1, 6u);
        (*x)[15] = subgroupBroadcast(l1, 7u);
    }
    if (HD4 > 16u) {
        (*x)[16] = subgroupBroadcast(l2, 0u);
        (*x)[17] = subgroupBroadcast(l2, 1u);
        (*x)[18] = subgroupBroadcast(l2, 2u);
        (*x)[19] = subgroupBroadcast(l2, 3u);
        (*x)[20] = subgroupBroadcast(l2, 4u);
        (*x)[21] = subgroupBroadcast(l2, 5u);
        (*x)[22] = subgroupBroadcast(l2, 6u);
        (*x)[23] = subgroupBroadcast(l2, 7u);
    }
    if (HD4 > 24u) {
        (*x)[24] = subgroupBroadcast(l3, 0u);
        (*x)[25] = subgroupBroadcast(l3, 1u);
        (*x)[26] = subgroupBroadcast(l3, 2u);
        (*x)[27] = subgroupBroadcast(l3, 3u);
        (*x)[28] = subgroupBroadcast(l3, 4u);
        (*x)[29] = subgroupBroadcast(l3, 5u);
        (*x)[30] = subgroupBroadcast(l3, 6u);
        (*x)[31] = subgroupBroadcast(l3, 7u);
    }
}

// A v row (as fetch_v), each lane loading an eighth of it.
fn fetch_v_shared(x: ptr<function, Row>, row: u32, lane: u32) {
    let base = row * p.ndv4;
    let last = max(p.ndv4, 1u) - 1u;
    var l0 = vec4<f32>(0.0);
    var l1 = vec4<f32>(0.0);
    var l2 = vec4<f32>(0.0);
    var l3 = vec4<f32>(0.0);
    if (HDV4 > 0u) {
        l0 = select(vec4<f32>(0.0), v[base + min(0u + lane, last)], 0u + lane < p.ndv4);
    }
    if (HDV4 > 8u) {
        l1 = select(vec4<f32>(0.0), v[base + min(8u + lane, last)], 8u + lane < p.ndv4);
    }
    if (HDV4 > 16u) {
        l2 = select(vec4<f32>(0.0), v[base + min(16u + lane, last)], 16u + lane < p.ndv4);
    }
    if (HDV4 > 24u) {
        l3 = select(vec4<f32>(0.0), v[base + min(24u + lane, last)], 24u + lane < p.ndv4);
    }
    if (HDV4 > 0u) {
        (*x)[0] = subgroupBroadcast(l0, 0u);
        (*x)[1] = subgroupBroadcast(l0, 1u);
        (*x)[2] = subgroupBroadcast(l0, 2u);
        (*x)[3] = subgroupBroadcast(l0, 3u);
        (*x)[4] = subgroupBroadcast(l0, 4u);
        (*x)[5] = subgroupBroadcast(l0, 5u);
        (*x)[6] = subgroupBroadcast(l0, 6u);
        (*x)[7] = subgroupBroadcast(l0, 7u);
    }
    if (HDV4 > 8u) {
        (*x)[8] = subgroupBroadcast(l1, 0u);
        (*x)[9] = subgroupBroadcast(l1, 1u);
        (*x)[10] = subgroupBroadcast(l1, 2u);
        (*x)[11] = subgroupBroadcast(l1, 3u);
        (*x)[12] = subgroupBroadcast(l1, 4u);
        (*x)[13] = subgroupBroadcast(l1, 5u);
        (*x)[14] = subgroupBroadcast(l1, 6u);
        (*x)[15] = subgroupBroadcast(l1, 7u);
    }
    if (HDV4 > 16u) {
        (*x)[16] = subgroupBroadcast(l2, 0u);
        (*x)[17] = subgroupBroadcast(l2, 1u);
        (*x)[18] = subgroupBroadcast(l2, 2u);
        (*x)[19] = subgroupBroadcast(l2, 3u);
        (*x)[20] = subgroupBroadcast(l2, 4u);
        (*x)[21] = subgroupBroadcast(l2, 5u);
        (*x)[22] = subgroupBroadcast(l2, 6u);
        (*x)[23] = subgroupBroadcast(l2, 7u);
    }
    if (HDV4 > 24u) {
        (*x)[24] = subgroupBroadcast(l3, 0u);
        (*x)[25] = subgroupBroadcast(l3, 1u);
        (*x)[26] = subgroupBroadcast(l3, 2u);
        (*x)[27] = subgroupBroadcast(l3, 3u);
        (*x)[28] = subgroupBroadcast(l3, 4u);
        (*x)[29] = subgroupBroadcast(l3, 5u);
        (*x)[30] = subgroupBroadcast(l3, 6u);
        (*x)[31] = subgroupBroadcast(l3, 7u);
    }
}

// A dO row (as fetch_gy), each lane loading an eighth of it.
fn fetch_gy_shared(x: ptr<function, Row>, row: u32, lane: u32) {
    let base = row * p.ndv4;
    let last = max(p.ndv4, 1u) - 1u;
    var l0 = vec4<f32>(0.0);
    var l1 = vec4<f32>(0.0);
    var l2 = vec4<f32>(0.0);
    var l3 = vec4<f32>(0.0);
    if (HDV4 > 0u) {
        l0 = select(vec4<f32>(0.0), gy[base + min(0u + lane, last)], 0u + lane < p.ndv4);
    }
    if (HDV4 > 8u) {
        l1 = select(vec4<f32>(0.0), gy[base + min(8u + lane, last)], 8u + lane < p.ndv4);
    }
    if (HDV4 > 16u) {
        l2 = select(vec4<f32>(0.0), gy[base + min(16u + lane, last)], 16u + lane < p.ndv4);
    }
    if (HDV4 > 24u) {
        l3 = select(vec4<f32>(0.0), gy[base + min(24u + lane, last)], 24u + lane < p.ndv4);
    }
    if (HDV4 > 0u) {
        (*x)[0] = subgroupBroadcast(l0, 0u);
        (*x)[1] = subgroupBroadcast(l0, 1u);
        (*x)[2] = subgroupBroadcast(l0, 2u);
        (*x)[3] = subgroupBroadcast(l0, 3u);
        (*x)[4] = subgroupBroadcast(l0, 4u);
        (*x)[5] = subgroupBroadcast(l0, 5u);
        (*x)[6] = subgroupBroadcast(l0, 6u);
        (*x)[7] = subgroupBroadcast(l0, 7u);
    }
    if (HDV4 > 8u) {
        (*x)[8] = subgroupBroadcast(l1, 0u);
        (*x)[9] = subgroupBroadcast(l1, 1u);
        (*x)[10] = subgroupBroadcast(l1, 2u);
        (*x)[11] = subgroupBroadcast(l1, 3u);
        (*x)[12] = subgroupBroadcast(l1, 4u);
        (*x)[13] = subgroupBroadcast(l1, 5u);
        (*x)[14] = subgroupBroadcast(l1, 6u);
        (*x)[15] = subgroupBroadcast(l1, 7u);
    }
    if (HDV4 > 16u) {
        (*x)[16] = subgroupBroadcast(l2, 0u);
        (*x)[17] = subgroupBroadcast(l2, 1u);
        (*x)[18] = subgroupBroadcast(l2, 2u);
        (*x)[19] = subgroupBroadcast(l2, 3u);
        (*x)[20] = subgroupBroadcast(l2, 4u);
        (*x)[21] = subgroupBroadcast(l2, 5u);
        (*x)[22] = subgroupBroadcast(l2, 6u);
        (*x)[23] = subgroupBroadcast(l2, 7u);
    }
    if (HDV4 > 24u) {
        (*x)[24] = subgroupBroadcast(l3, 0u);
        (*x)[25] = subgroupBroadcast(l3, 1u);
        (*x)[26] = subgroupBroadcast(l3, 2u);
        (*x)[27] = subgroupBroadcast(l3, 3u);
        (*x)[28] = subgroupBroadcast(l3, 4u);
        (*x)[29] = subgroupBroadcast(l3, 5u);
        (*x)[30] = subgroupBroadcast(l3, 6u);
        (*x)[31] = subgroupBroadcast(l3, 7u);
    }
}
