// Tail of shaders/attention.wgsl for every adapter (no subgroups needed); src/kernels/mod.rs
// appends it to make the "attention" module. Each invocation loads whole rows itself; the lane
// is unused. shaders/attention_sg.wgsl defines the same functions with subgroup sharing.

fn lane_id(lid: u32) -> u32 {
    return lid;
}
fn fetch_q_shared(x: ptr<function, Row>, row: u32, lane: u32) {
    fetch_q(x, row);
}
fn fetch_k_shared(x: ptr<function, Row>, row: u32, lane: u32) {
    fetch_k(x, row);
}
fn fetch_v_shared(x: ptr<function, Row>, row: u32, lane: u32) {
    fetch_v(x, row);
}
fn fetch_gy_shared(x: ptr<function, Row>, row: u32, lane: u32) {
    fetch_gy(x, row);
}
