//! Elementwise fusion: chains and trees of elementwise ops run as one generated kernel.
//!
//! Kernels that compute an elementwise op say so through `Kernel::elementwise`.
//! At realization time, `plan` walks the ordered steps and lets a step absorb an input's
//! producer when the producer
//! - is elementwise and an intermediate (not kept: no target, no outside handle),
//! - has this step as its only consumer (it may read it through several inputs),
//! - has the same element count (so element `i` of the producer feeds element `i` here),
//!
//! and the merged group stays within the limits: at most `MAX_READS` distinct input buffers
//! (WebGPU allows 8 storage buffers per stage, one is the output), at most 64 parameter words
//! (the 256-byte uniform block) and at most [`MAX_OPS`] ops. A group is therefore a tree whose
//! root is its only output; everything it reads from outside (realized tensors, other kernels'
//! outputs, kept nodes) is a *leaf*, bound once per distinct buffer.
//!
//! `build` turns a group into a compact program: a list of `u32` words (loads, ops, a
//! store) that fully determines the generated WGSL, plus its parameter words (element count,
//! broadcast dims and strides, scalar operands). The program is the pipeline cache key, so a
//! warm realization builds a few words per op and hashes them; `wgsl` writes the shader text
//! only on a cache miss.
//!
//! Inputs whose element count equals the output's are read at the linear index. Broadcast
//! inputs (a bias, a per-row scale) are read through strides over their collapsed dims:
//! adjacent dims that are both broadcast, or both contiguous, merge into one, so a bias add
//! costs 2 dims (4 parameter words) whatever the rank.

use super::{Src, Step};
use crate::ir::{BinaryOp, Elementwise, UnaryOp};
use crate::shape::{broadcast_strides, numel};
use crate::DType;

/// Most ops in one generated kernel; longer chains are split into several kernels. Measured on
/// lavapipe with its shader cache off: a program of 256 alternating add/sigmoid ops compiles in
/// about 0.2 s, 1,024 such ops in 1.6-2.1 s (it grows faster than linearly), while the extra
/// dispatches of a split cost about 20 µs each, under 0.1 µs per op at this cap.
pub const MAX_OPS: usize = 256;
/// Most distinct input buffers of one generated kernel (8 storage buffers per stage, one is
/// the output).
pub(crate) const MAX_READS: usize = 7;
/// Parameter words of one kernel (the 256-byte uniform block).
pub(crate) const MAX_WORDS: usize = 64;

/// Which buffer a leaf reads: a realized buffer, or output `k` of step `j`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LeafKey {
    Buf(u64),
    Step(usize, usize),
}

fn leaf_key(src: &Src) -> LeafKey {
    match src {
        Src::Storage(s) => LeafKey::Buf(s.buf.id),
        Src::Step(j, k) => LeafKey::Step(*j, *k),
    }
}

/// Collapsed `(size, stride)` dims of a broadcast read, outermost first.
type Dims = Vec<(u32, u32)>;

/// How element `i` of the output maps to an element of an input: the same index, or through
/// collapsed `(dim, stride)` pairs (outermost first). `None` when the input cannot be read
/// elementwise against `out` at all.
fn mode(input: &[usize], out: &[usize]) -> Option<Vec<(u32, u32)>> {
    let n = numel(out);
    if numel(input) == n {
        return Some(Vec::new());
    }
    if input.len() > out.len() || n > u32::MAX as usize {
        return None;
    }
    let offset = out.len() - input.len();
    for (d, &k) in input.iter().enumerate() {
        if k != 1 && k != out[d + offset] {
            return None;
        }
    }
    let strides = broadcast_strides(input, out);
    let mut dims: Vec<(u32, u32)> = Vec::new();
    for (&size, &stride) in out.iter().zip(&strides) {
        if size == 1 {
            continue;
        }
        let (size, stride) = (size as u32, stride as u32);
        if let Some(last) = dims.last_mut() {
            let both_broadcast = last.1 == 0 && stride == 0;
            let contiguous = stride != 0 && last.1 == stride * size;
            if both_broadcast || contiguous {
                last.0 *= size;
                last.1 = if stride == 0 { 0 } else { stride };
                continue;
            }
        }
        dims.push((size, stride));
    }
    // A broadcast input never has all dims collapsed to one contiguous run, so `dims` marks it
    // as strided; all dims broadcast (a single element) is one stride-0 dim.
    if dims.is_empty() {
        dims.push((1, 0));
    }
    Some(dims)
}

/// What one group so far reads and uses, for the limit checks.
#[derive(Default)]
struct Info {
    leaves: Vec<LeafKey>,
    strided: Vec<(LeafKey, Vec<(u32, u32)>)>,
    scalars: usize,
    ops: usize,
}

impl Info {
    fn words(&self) -> usize {
        1 + self.scalars + self.strided.iter().map(|(_, d)| 2 * d.len()).sum::<usize>()
    }

    fn add_leaf(&mut self, key: LeafKey, dims: &[(u32, u32)]) {
        if !self.leaves.contains(&key) {
            self.leaves.push(key);
        }
        if !dims.is_empty() && !self.strided.iter().any(|(k, d)| *k == key && d == dims) {
            self.strided.push((key, dims.to_vec()));
        }
    }

    /// Whether this group and `other` merged stay within the limits, with room for `later`
    /// more leaves.
    fn fits_with(&self, other: &Info, later: usize, max_ops: usize) -> bool {
        let leaves = self.leaves.len()
            + other
                .leaves
                .iter()
                .filter(|k| !self.leaves.contains(k))
                .count();
        let strided: usize = other
            .strided
            .iter()
            .filter(|(k, d)| !self.strided.iter().any(|(k2, d2)| k2 == k && d2 == d))
            .map(|(_, d)| 2 * d.len())
            .sum();
        leaves + later <= MAX_READS
            && self.words() + other.scalars + strided <= MAX_WORDS
            && self.ops + other.ops <= max_ops
    }

    fn absorb(&mut self, other: &Info) {
        for &k in &other.leaves {
            if !self.leaves.contains(&k) {
                self.leaves.push(k);
            }
        }
        for (k, d) in &other.strided {
            if !self.strided.iter().any(|(k2, d2)| k2 == k && d2 == d) {
                self.strided.push((*k, d.clone()));
            }
        }
        self.scalars += other.scalars;
        self.ops += other.ops;
    }
}

const NONE: usize = usize::MAX;
const MANY: usize = usize::MAX - 1;

/// The elementwise op of step `i`, if it may take part in fusion.
fn fusable(step: &Step<'_>) -> Option<Elementwise> {
    let e = step.kernel.elementwise()?;
    let outs = &step.node.outs;
    let ok = outs.len() == 1
        && outs[0].dtype == DType::F32
        && step.inputs.len() == e.arity()
        && step.inputs.iter().all(|t| t.dtype() == DType::F32)
        && numel(&outs[0].shape) <= u32::MAX as usize;
    ok.then_some(e)
}

/// Decides which steps are computed inside a consumer's kernel: `Some(i)` for a step fused into
/// step `i`, `None` for a step that writes its own buffer (a group's root, or a step outside any
/// group).
pub(super) fn plan(
    steps: &[Step<'_>],
    srcs: &[Vec<Src>],
    keep: &[bool],
    max_ops: usize,
) -> Vec<Option<usize>> {
    let n = steps.len();
    let mut fused_into = vec![None; n];
    let mut consumer = vec![NONE; n];
    for (i, s) in srcs.iter().enumerate() {
        for src in s {
            if let Src::Step(j, _) = *src {
                consumer[j] = match consumer[j] {
                    NONE => i,
                    c if c == i => i,
                    _ => MANY,
                };
            }
        }
    }
    let mut infos: Vec<Option<Info>> = (0..n).map(|_| None).collect();
    let mut candidates: Vec<usize> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let Some(e) = fusable(step) else { continue };
        let out = &step.node.outs[0].shape;
        let n_out = numel(out);
        let mut info = Info {
            ops: 1,
            scalars: usize::from(e.scalar().is_some()),
            ..Info::default()
        };
        candidates.clear();
        let mut ok = true;
        for (t, src) in step.inputs.iter().zip(&srcs[i]) {
            if let Src::Step(j, 0) = *src {
                let joins = !keep[j]
                    && consumer[j] == i
                    && infos[j].is_some()
                    && numel(&steps[j].node.outs[0].shape) == n_out;
                if joins {
                    if !candidates.contains(&j) {
                        candidates.push(j);
                    }
                    continue;
                }
            }
            match mode(&t.shape, out) {
                Some(dims) => info.add_leaf(leaf_key(src), &dims),
                None => ok = false,
            }
        }
        if !ok {
            continue;
        }
        for (c, &j) in candidates.iter().enumerate() {
            let Some(producer) = infos[j].as_ref() else {
                continue;
            };
            // Inputs not yet decided may still become leaves; keep room for them.
            let later = candidates.len() - c - 1;
            if info.fits_with(producer, later, max_ops) {
                info.absorb(producer);
                fused_into[j] = Some(i);
                infos[j] = None;
            } else {
                info.add_leaf(LeafKey::Step(j, 0), &[]);
            }
        }
        infos[i] = Some(info);
    }
    fused_into
}

// Program words. Each load or op defines the next value register, in order.
const LOAD: u32 = 1; // binding
const LOAD_STRIDED: u32 = 2; // binding, dims, first parameter word
const UNARY: u32 = 3; // op, a
const BINARY: u32 = 4; // op, a, b
const SCALAR: u32 = 5; // op, a, parameter word, scalar_first
const UNARY_GRAD: u32 = 6; // op, x, dy
const SCALAR_GRAD: u32 = 7; // op, x, dy, parameter word, scalar_first
const BINARY_GRAD: u32 = 8; // op, which, a, b, g
const STORE: u32 = 9; // value
const ACTIVATION: u32 = 10; // code, a, parameter word (alpha; 0 when unused)
const ACTIVATION_GRAD: u32 = 11; // code, x, dy, parameter word

/// One group, ready to launch: its program (the pipeline key), its parameter words, and the
/// inputs to bind, in binding order (as step-level sources).
pub(super) struct Fused {
    pub program: Vec<u32>,
    pub params: Vec<u32>,
    pub inputs: Vec<Src>,
    pub numel: usize,
    pub ops: usize,
}

/// The program of the group whose members are `members` (ascending; the root last).
pub(super) fn build(
    steps: &[Step<'_>],
    srcs: &[Vec<Src>],
    fused_into: &[Option<usize>],
    members: &[usize],
) -> Fused {
    let root = members[members.len() - 1];
    let numel_out = numel(&steps[root].node.outs[0].shape);
    let mut program: Vec<u32> = Vec::with_capacity(2 + 4 * members.len());
    program.push(0); // number of inputs, filled in at the end
    let mut params: Vec<u32> = vec![numel_out as u32];
    let mut keys: Vec<LeafKey> = Vec::new();
    let mut inputs: Vec<Src> = Vec::new();
    // (binding, dims, register) of every load so far.
    let mut loads: Vec<(u32, Dims, u32)> = Vec::new();
    let mut member_reg: Vec<u32> = Vec::with_capacity(members.len());
    let mut next: u32 = 0;
    let mut operands: Vec<u32> = Vec::with_capacity(3);
    for &m in members {
        let step = &steps[m];
        let out = &step.node.outs[0].shape;
        operands.clear();
        for (t, src) in step.inputs.iter().zip(&srcs[m]) {
            if let Src::Step(j, 0) = *src {
                if fused_into[j] == Some(m) {
                    // Members precede their consumer, so `j` already has a register.
                    let at = members.binary_search(&j).unwrap_or(0);
                    operands.push(member_reg[at]);
                    continue;
                }
            }
            let key = leaf_key(src);
            let binding = match keys.iter().position(|k| *k == key) {
                Some(b) => b as u32,
                None => {
                    keys.push(key);
                    inputs.push(src.clone());
                    (keys.len() - 1) as u32
                }
            };
            let dims = mode(&t.shape, out).unwrap_or_default();
            let reg = match loads.iter().find(|(b, d, _)| *b == binding && *d == dims) {
                Some(&(_, _, r)) => r,
                None => {
                    if dims.is_empty() {
                        program.extend([LOAD, binding]);
                    } else {
                        program.extend([
                            LOAD_STRIDED,
                            binding,
                            dims.len() as u32,
                            params.len() as u32,
                        ]);
                        params.extend(dims.iter().map(|d| d.0));
                        params.extend(dims.iter().map(|d| d.1));
                    }
                    loads.push((binding, dims, next));
                    next += 1;
                    next - 1
                }
            };
            operands.push(reg);
        }
        // Scalars are not shared even when equal, so a program depends only on the ops'
        // structure, never on the values.
        let mut scalar_word = |bits: u32| -> u32 {
            params.push(bits);
            (params.len() - 1) as u32
        };
        let o = &operands;
        match step.kernel.elementwise() {
            Some(Elementwise::Unary(op)) => program.extend([UNARY, op.code(), o[0]]),
            Some(Elementwise::Binary(op)) => program.extend([BINARY, op.code(), o[0], o[1]]),
            Some(Elementwise::Scalar {
                op,
                value,
                scalar_first,
            }) => {
                let w = scalar_word(value.to_bits());
                program.extend([SCALAR, op.code(), o[0], w, u32::from(scalar_first)]);
            }
            Some(Elementwise::UnaryGrad(op)) => program.extend([UNARY_GRAD, op.code(), o[0], o[1]]),
            Some(Elementwise::ScalarGrad {
                op,
                value,
                scalar_first,
            }) => {
                let w = scalar_word(value.to_bits());
                program.extend([
                    SCALAR_GRAD,
                    op.code(),
                    o[0],
                    o[1],
                    w,
                    u32::from(scalar_first),
                ]);
            }
            Some(Elementwise::BinaryGrad { op, which }) => {
                program.extend([BINARY_GRAD, op.code(), which, o[0], o[1], o[2]])
            }
            Some(e @ Elementwise::Activation { code, .. }) => {
                let w = e.scalar().map_or(0, &mut scalar_word);
                program.extend([ACTIVATION, code, o[0], w]);
            }
            Some(e @ Elementwise::ActivationGrad { code, .. }) => {
                let w = e.scalar().map_or(0, &mut scalar_word);
                program.extend([ACTIVATION_GRAD, code, o[0], o[1], w]);
            }
            // `plan` only groups elementwise steps.
            None => program.extend([UNARY, u32::MAX, o.first().copied().unwrap_or(0)]),
        }
        member_reg.push(next);
        next += 1;
    }
    program.extend([STORE, next - 1]);
    program[0] = inputs.len() as u32;
    Fused {
        program,
        params,
        inputs,
        numel: numel_out,
        ops: members.len(),
    }
}

/// `p.w[..][..]`, parameter word `k`.
fn word(k: u32) -> String {
    format!("p.w[{}][{}]", k / 4, k % 4)
}

/// The activations of shaders/lib/activation_ops.wgsl by op code (`Elementwise::Activation`),
/// with whether the function takes the slope `alpha`.
const ACTIVATIONS: [(&str, bool); 4] = [
    ("leaky_relu", true),
    ("gelu", false),
    ("gelu_tanh", false),
    ("erf", false),
];

/// The library pieces a generated kernel includes: one per op family it uses.
#[derive(Default)]
struct Pieces {
    unary: bool,
    binary: bool,
    activation: bool,
}

/// `unary_<name>(a)` (or its derivative with `suffix` "_d") from shaders/lib/unary_ops.wgsl.
fn unary_call(pieces: &mut Pieces, op: u32, suffix: &str, a: &str) -> String {
    match UnaryOp::ALL.get(op as usize) {
        Some(op) => {
            pieces.unary = true;
            format!("unary_{}{suffix}({a})", op.name())
        }
        None => a.to_string(),
    }
}

/// `binary_<name><suffix>(a, b)` from shaders/lib/binary_ops.wgsl: the op (suffix ""), or its
/// partial derivative by the first ("_da") or second ("_db") operand.
fn binary_call(pieces: &mut Pieces, op: u32, suffix: &str, a: &str, b: &str) -> String {
    match BinaryOp::ALL.get(op as usize) {
        Some(op) => {
            pieces.binary = true;
            format!("binary_{}{suffix}({a}, {b})", op.name())
        }
        None => a.to_string(),
    }
}

/// `activation_<name><suffix>(a[, alpha])` from shaders/lib/activation_ops.wgsl.
fn activation_call(pieces: &mut Pieces, code: u32, suffix: &str, a: &str, alpha: &str) -> String {
    match ACTIVATIONS.get(code as usize) {
        Some(&(name, true)) => {
            pieces.activation = true;
            format!("activation_{name}{suffix}({a}, {alpha})")
        }
        Some(&(name, false)) => {
            pieces.activation = true;
            format!("activation_{name}{suffix}({a})")
        }
        None => a.to_string(),
    }
}

/// The WGSL of a program made by [`build`]. Called only when its pipeline is not cached.
pub(crate) fn wgsl(program: &[u32]) -> String {
    use std::fmt::Write;
    let reads = program.first().copied().unwrap_or(0);
    let mut body = String::new();
    let mut pieces = Pieces::default();
    let mut reg = 0u32;
    let mut at = 1usize;
    let w = |k: usize| program.get(k).copied().unwrap_or(0);
    while at < program.len() {
        let v = |k: usize| format!("v{}", w(k));
        let line = match w(at) {
            LOAD => {
                at += 2;
                format!("in{}[i]", w(at - 1))
            }
            LOAD_STRIDED => {
                let (binding, dims, first) = (w(at + 1), w(at + 2), w(at + 3));
                at += 4;
                let _ = writeln!(body, "    var rem{reg} = i;\n    var at{reg} = 0u;");
                for d in (0..dims).rev() {
                    let size = word(first + d);
                    let stride = word(first + dims + d);
                    let _ = writeln!(
                        body,
                        "    at{reg} += (rem{reg} % {size}) * {stride};\n    rem{reg} = rem{reg} / {size};"
                    );
                }
                format!("in{binding}[at{reg}]")
            }
            UNARY => {
                at += 3;
                unary_call(&mut pieces, w(at - 2), "", &v(at - 1))
            }
            BINARY => {
                at += 4;
                binary_call(&mut pieces, w(at - 3), "", &v(at - 2), &v(at - 1))
            }
            SCALAR => {
                at += 5;
                let s = format!("bitcast<f32>({})", word(w(at - 2)));
                if w(at - 1) == 1 {
                    binary_call(&mut pieces, w(at - 4), "", &s, &v(at - 3))
                } else {
                    binary_call(&mut pieces, w(at - 4), "", &v(at - 3), &s)
                }
            }
            UNARY_GRAD => {
                at += 4;
                let d = unary_call(&mut pieces, w(at - 3), "_d", &v(at - 2));
                format!("{} * {d}", v(at - 1))
            }
            SCALAR_GRAD => {
                at += 6;
                // d(v OP s)/dv, or d(s OP v)/dv when the scalar comes first.
                let (op, x, sc) = (
                    w(at - 5),
                    v(at - 4),
                    format!("bitcast<f32>({})", word(w(at - 2))),
                );
                let d = if w(at - 1) == 1 {
                    binary_call(&mut pieces, op, "_db", &sc, &x)
                } else {
                    binary_call(&mut pieces, op, "_da", &x, &sc)
                };
                format!("{} * {d}", v(at - 3))
            }
            BINARY_GRAD => {
                at += 6;
                let suffix = if w(at - 4) == 1 { "_db" } else { "_da" };
                let d = binary_call(&mut pieces, w(at - 5), suffix, &v(at - 3), &v(at - 2));
                format!("{} * {d}", v(at - 1))
            }
            ACTIVATION => {
                at += 4;
                let alpha = format!("bitcast<f32>({})", word(w(at - 1)));
                activation_call(&mut pieces, w(at - 3), "", &v(at - 2), &alpha)
            }
            ACTIVATION_GRAD => {
                at += 5;
                let alpha = format!("bitcast<f32>({})", word(w(at - 1)));
                let d = activation_call(&mut pieces, w(at - 4), "_d", &v(at - 3), &alpha);
                format!("{} * {d}", v(at - 2))
            }
            STORE => {
                let _ = writeln!(body, "    y[i] = {};", v(at + 1));
                at += 2;
                continue;
            }
            _ => break,
        };
        let _ = writeln!(body, "    let v{reg} = {line};");
        reg += 1;
    }
    let mut s = String::with_capacity(body.len() + 4096);
    s.push_str(PRELUDE);
    // The math of the hand-written elementwise kernels, from the WGSL library: only the op
    // families this kernel uses, each a set of small functions (one per op).
    let mut includes = String::new();
    for (used, piece) in [
        (pieces.unary, "unary_ops"),
        (pieces.binary, "binary_ops"),
        (pieces.activation, "activation_ops"),
    ] {
        if used {
            let _ = writeln!(includes, "// kiln:include {piece}");
        }
    }
    // The pieces are fixed names of the library, so expansion cannot fail.
    s.push_str(&crate::shaders::expand_includes(&includes).unwrap_or_default());
    for b in 0..reads {
        let _ = writeln!(
            s,
            "@group(0) @binding({}) var<storage, read> in{b}: array<f32>;",
            b + 1
        );
    }
    let _ = writeln!(
        s,
        "@group(0) @binding({}) var<storage, read_write> y: array<f32>;\n",
        reads + 1
    );
    s.push_str(ENTRY);
    s.push_str(&body);
    s.push_str("}\n");
    s
}

const PRELUDE: &str = r#"// A fused elementwise kernel generated by kiln's executor (src/executor/fusion.rs).
//
// in<k>: the k-th input, read at the output index or through broadcast strides.
// y: the output, (numel) contiguous.
// p.w: parameter words: numel, broadcast dims and strides, scalar operands.
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default maximum.

struct Params {
    w: array<vec4<u32>, 16>,
}

@group(0) @binding(0) var<uniform> p: Params;

"#;

const ENTRY: &str = r#"@compute @workgroup_size(256)
fn fused(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.w[0][0]) {
        return;
    }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// A program that uses every instruction with every op code.
    fn every_instruction() -> Vec<u32> {
        let mut p = vec![3, LOAD, 0, LOAD_STRIDED, 1, 2, 1, LOAD, 2];
        // Registers 0..=2 are the loads; each instruction below reads the previous result.
        let mut prev = 2u32;
        let mut ops: Vec<Vec<u32>> = Vec::new();
        for op in UnaryOp::ALL {
            ops.push(vec![UNARY, op.code(), u32::MAX]);
            ops.push(vec![UNARY_GRAD, op.code(), u32::MAX, 1]);
        }
        for code in 0..4 {
            ops.push(vec![ACTIVATION, code, u32::MAX, 6]);
            ops.push(vec![ACTIVATION_GRAD, code, u32::MAX, 2, 5]);
        }
        for op in BinaryOp::ALL {
            for flag in 0..2 {
                ops.push(vec![BINARY, op.code(), u32::MAX, 1]);
                ops.push(vec![SCALAR, op.code(), u32::MAX, 5, flag]);
                ops.push(vec![SCALAR_GRAD, op.code(), u32::MAX, 2, 6, flag]);
                ops.push(vec![BINARY_GRAD, op.code(), flag, u32::MAX, 1, 0]);
            }
        }
        for mut words in ops {
            for w in &mut words {
                if *w == u32::MAX {
                    *w = prev;
                }
            }
            p.extend(words);
            prev += 1;
        }
        p.extend([STORE, prev]);
        p
    }

    #[test]
    fn generated_kernels_validate_with_naga() {
        for program in [every_instruction(), vec![1, LOAD, 0, UNARY, 0, 0, STORE, 1]] {
            let src = wgsl(&program);
            let module = naga::front::wgsl::parse_str(&src)
                .unwrap_or_else(|e| panic!("{}\n{src}", e.emit_to_string(&src)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::empty(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}\n{src}", e.emit_to_string(&src)));
            let ep = &module.entry_points[0];
            assert_eq!(ep.name, "fused");
            assert!(ep.workgroup_size.iter().product::<u32>() <= 256);
        }
    }

    /// The hand-written kernels switch on an op code to the same library function that a
    /// generated kernel calls for that code, so the two compute the same math.
    #[test]
    fn hand_written_switches_call_the_functions_fusion_emits() {
        let src = |name: &str| {
            crate::shaders::shader_source(name)
                .unwrap_or_else(|| panic!("{name} is not registered"))
        };
        let case = |code: u32, call: String| format!("case {code}u: {{ return {call}; }}");
        let mut missing = Vec::new();
        let mut want = |module: &str, code: u32, call: String| {
            if !src(module).contains(&case(code, call.clone())) {
                missing.push(format!("{module}: case {code}u -> {call}"));
            }
        };
        let mut pieces = Pieces::default();
        for op in UnaryOp::ALL {
            let c = op.code();
            want("unary", c, unary_call(&mut pieces, c, "", "v"));
            want("unary", c, unary_call(&mut pieces, c, "_d", "v"));
        }
        for op in BinaryOp::ALL {
            let c = op.code();
            want("binary", c, binary_call(&mut pieces, c, "", "u", "v"));
            want("binary", c, binary_call(&mut pieces, c, "_da", "u", "v"));
            want("binary", c, binary_call(&mut pieces, c, "_db", "u", "v"));
            want("unary", c, binary_call(&mut pieces, c, "", "a", "b"));
            want(
                "unary",
                c,
                binary_call(&mut pieces, c, "_da", "v", "p.scalar"),
            );
            want(
                "unary",
                c,
                binary_call(&mut pieces, c, "_db", "p.scalar", "v"),
            );
        }
        for c in 0..ACTIVATIONS.len() as u32 {
            want(
                "activation",
                c,
                activation_call(&mut pieces, c, "", "v", "p.alpha"),
            );
            want(
                "activation",
                c,
                activation_call(&mut pieces, c, "_d", "v", "p.alpha"),
            );
        }
        assert!(missing.is_empty(), "missing cases:\n{}", missing.join("\n"));
    }

    #[test]
    fn a_generated_kernel_includes_only_the_op_families_it_uses() {
        // x + x, stored: binary ops only.
        let src = wgsl(&[1, LOAD, 0, BINARY, BinaryOp::Add.code(), 0, 0, STORE, 1]);
        assert!(src.contains("binary_add(v0, v0)"), "{src}");
        assert!(src.contains("fn binary_add(") && src.contains("fn f32_from_bits("));
        assert!(
            !src.contains("fn unary_") && !src.contains("fn activation_"),
            "{src}"
        );
        assert!(!src.contains("kiln:include"), "{src}");
        // An activation gradient: the activation piece with its sigmoid, nothing else.
        let src = wgsl(&[2, LOAD, 0, LOAD, 1, ACTIVATION_GRAD, 2, 0, 1, 0, STORE, 2]);
        assert!(src.contains("v1 * activation_gelu_tanh_d(v0)"), "{src}");
        assert_eq!(src.matches("fn stable_sigmoid(").count(), 1, "{src}");
        assert!(
            !src.contains("fn binary_") && !src.contains("fn unary_"),
            "{src}"
        );
    }

    #[test]
    fn generated_kernels_have_no_non_finite_literals() {
        // Chrome's WGSL compiler rejects constants that are not finite f32s.
        let src = wgsl(&every_instruction()).to_lowercase();
        let code: String = src
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for word in ["inf", "nan", "infinity"] {
            let bare = code
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|t| t == word || t == format!("{word}f"));
            assert!(!bare, "a `{word}` literal in a generated kernel");
        }
    }

    #[test]
    fn broadcast_modes_collapse_dims() {
        assert_eq!(mode(&[4, 5], &[4, 5]), Some(vec![]));
        // A bias over the last dim: outer dims merge into one broadcast dim.
        assert_eq!(mode(&[7], &[2, 3, 7]), Some(vec![(6, 0), (7, 1)]));
        // A per-row scale.
        assert_eq!(mode(&[3, 1], &[3, 7]), Some(vec![(3, 1), (7, 0)]));
        // Size-1 output dims vanish; a single element is one broadcast dim.
        assert_eq!(mode(&[1], &[2, 1, 3]), Some(vec![(6, 0)]));
        assert_eq!(
            mode(&[2, 1, 4], &[2, 3, 4]),
            Some(vec![(2, 4), (3, 0), (4, 1)])
        );
        assert_eq!(mode(&[3], &[2, 4]), None);
        assert_eq!(mode(&[2, 2, 4], &[2, 4]), None);
    }
}
