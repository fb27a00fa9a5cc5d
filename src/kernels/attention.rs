//! Scaled dot-product attention (shaders/attention.wgsl): one fused flash-attention forward
//! kernel that never stores the score matrix and also saves each row's logsumexp, and
//! FlashAttention-2 backward kernels (dQ per block of queries; dK and dV per block of keys,
//! summing the query heads of a grouped-query kv head) that recompute the probabilities.
//!
//! The kernels come in two builds ([`AttentionVariant`]): plain, and (on adapters with 8-wide
//! subgroups: Mesa's CPU emulators on AVX2) one whose hot loops share each row load across a
//! subgroup's lanes (shaders/attention_sg.wgsl; ~2x the work per CPU-second on lavapipe).

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, AttnPadParams, AttnParams, Spec};
use crate::shape::{broadcast_shape, broadcast_strides, numel};
use crate::{Context, DType, Tensor};
use std::cell::Cell;

const OP: &str = "attention";
/// Invocations per workgroup (`WG` in the shader).
const WG: usize = 32;
/// Widest heads (`HD4 + HDV4` capacity, in vec4s) for which the kernels keep 8 rows (keys) per
/// invocation rather than 4: past that, 8 rows compile too slowly on the CPU emulators.
const ROWS8_MAX_CHUNKS: u32 = 32;
/// The largest head dim (of q/k or of v) the kernels hold (`MAXC` vec4s in the shader).
pub const MAX_HEAD_DIM: usize = 128;

/// The build of the attention kernels an op runs. [`AttentionVariant::Auto`] (the default)
/// picks per adapter; the others force one (for tests and benchmarks) where it can run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttentionVariant {
    /// Subgroup-shared loads where the adapter has subgroups of exactly 8, else plain.
    #[default]
    Auto,
    /// Every invocation loads whole rows itself (any adapter).
    Plain,
    /// Row loads shared across 8-wide subgroups (falls back to plain without them).
    Subgroup,
}

thread_local! {
    static FORCED: Cell<AttentionVariant> = const { Cell::new(AttentionVariant::Auto) };
}

/// Runs `f` with every attention op recorded on this thread using `variant` where the adapter
/// can run it (an op's backward kernels use the build its forward used).
pub(crate) fn with_attention_variant<R>(variant: AttentionVariant, f: impl FnOnce() -> R) -> R {
    /// Restores the previous choice when dropped, also when `f` panics.
    struct Restore(AttentionVariant);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|c| c.replace(variant)));
    f()
}

/// The variant attention ops recorded now on this thread run on `ctx`: subgroup-shared loads
/// need subgroups of exactly 8 invocations (a workgroup of 32 is then 4 subgroups whose lanes
/// the kernels address by rank); elsewhere, or when [`AttentionVariant::Plain`] is forced, the
/// plain build.
pub(crate) fn attention_variant(ctx: &Context) -> AttentionVariant {
    let sg8 = crate::kernels::subgroups_of_8(ctx);
    match FORCED.with(Cell::get) {
        AttentionVariant::Plain => AttentionVariant::Plain,
        _ if sg8 => AttentionVariant::Subgroup,
        _ => AttentionVariant::Plain,
    }
}

/// Options of [`Tensor::attention`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttentionParams {
    /// Multiplies `Q·Kᵀ`; `None` means `1 / sqrt(head_dim)`.
    pub scale: Option<f32>,
    /// Query `i` sees only keys `j <= i` (aligned to the top-left when the query and key
    /// lengths differ, as ONNX does).
    pub causal: bool,
}

/// The checked shapes and options of one attention call.
#[derive(Clone, Debug)]
struct Plan {
    batch: usize,
    hq: usize,
    hkv: usize,
    sq: usize,
    skv: usize,
    d: usize,
    dv: usize,
    scale: f32,
    causal: bool,
    /// The mask's element strides over (B, HQ, SQ, SKV), 0 where it is broadcast.
    mask: Option<[usize; 4]>,
    /// Whether the kernels share row loads through subgroups (module "attention_sg", see
    /// [`AttentionVariant`]) rather than plain loads ("attention").
    sg: bool,
}

/// Capacity class of a head dim of `n` vec4 chunks (the shader's `HD4`/`HDV4`, a loop bound the
/// compiler unrolls): exact up to 4, then multiples of 4, so one pipeline serves a range of
/// head dims.
fn capacity(n: usize) -> u32 {
    let c = if n <= 4 { n.max(1) } else { n.div_ceil(4) * 4 };
    c as u32
}

impl Plan {
    fn new(
        q: &[usize],
        k: &[usize],
        v: &[usize],
        mask: Option<&[usize]>,
        p: &AttentionParams,
    ) -> Result<Plan> {
        let (&[batch, hq, sq, d], &[kb, hkv, skv, kd]) = (q, k) else {
            return Err(Error::invalid(
                OP,
                format!(
                    "q and k must be 4-D (batch, heads, seq, head_dim), got shapes {q:?} and {k:?}"
                ),
            ));
        };
        let &[vb, vh, vs, dv] = v else {
            return Err(Error::invalid(
                OP,
                format!("v must be 4-D (batch, kv_heads, seq, head_dim), got shape {v:?}"),
            ));
        };
        if kb != batch || kd != d || hkv == 0 || hq % hkv != 0 {
            return Err(Error::shape(OP, q, k));
        }
        if (vb, vh, vs) != (kb, hkv, skv) {
            return Err(Error::shape(OP, k, v));
        }
        if d > MAX_HEAD_DIM || dv > MAX_HEAD_DIM {
            return Err(Error::invalid(
                OP,
                format!(
                    "head dims up to {MAX_HEAD_DIM} are supported, got {d} (q, k) and {dv} (v)"
                ),
            ));
        }
        let scale = match p.scale {
            Some(s) if !s.is_finite() => {
                return Err(Error::invalid(OP, format!("scale must be finite, got {s}")))
            }
            Some(s) => s,
            None => 1.0 / (d.max(1) as f32).sqrt(),
        };
        let full = [batch, hq, sq, skv];
        let mask = match mask {
            None => None,
            Some(m) => {
                let b = broadcast_shape(OP, m, &full).map_err(|_| Error::shape(OP, m, &full))?;
                if b != full {
                    return Err(Error::shape(OP, m, &full));
                }
                let s = broadcast_strides(m, &full);
                Some([s[0], s[1], s[2], s[3]])
            }
        };
        let plan = Plan {
            batch,
            hq,
            hkv,
            sq,
            skv,
            d,
            dv,
            scale,
            causal: p.causal,
            mask,
            sg: false,
        };
        // Every index the shaders compute is a u32.
        let largest = [
            numel(q),
            numel(k),
            numel(v),
            batch * hq * sq * dv,
            plan.mask.map_or(0, |_| numel(&full)),
        ];
        if largest.iter().any(|&n| n > u32::MAX as usize / 4) {
            return Err(Error::invalid(
                OP,
                format!("tensors of shapes {q:?}, {k:?}, {v:?} are too large to index with u32"),
            ));
        }
        Ok(plan)
    }

    /// The shader's `Params`, with `nblk` blocks per head.
    fn params(&self, nblk: usize) -> AttnParams {
        AttnParams {
            batch: self.batch as u32,
            hq: self.hq as u32,
            group: (self.hq / self.hkv) as u32,
            sq: self.sq as u32,
            skv: self.skv as u32,
            d: self.d as u32,
            dv: self.dv as u32,
            scale2: self.scale * std::f32::consts::LOG2_E,
            nblk: nblk as u32,
            nd4: self.d.div_ceil(4) as u32,
            ndv4: self.dv.div_ceil(4) as u32,
            scale: self.scale,
            mstride: self.mask.map_or([0; 4], |s| s.map(|x| x as u32)),
        }
    }

    /// `plain` or, when the plan shares loads through subgroups, `sg`.
    fn pick(
        &self,
        plain: &'static Spec<AttnParams>,
        sg: &'static Spec<AttnParams>,
    ) -> &'static Spec<AttnParams> {
        if self.sg {
            sg
        } else {
            plain
        }
    }

    /// Override constants for a kernel whose blocks run along a sequence of `seq` rows (keys).
    fn constants(&self, seq: usize) -> Vec<(&'static str, u32)> {
        vec![
            ("HD4", capacity(self.d.div_ceil(4))),
            ("HDV4", capacity(self.dv.div_ceil(4))),
            ("ROWS8", u32::from(self.rows8(seq))),
            ("CAUSAL", u32::from(self.causal)),
            ("MASKED", u32::from(self.mask.is_some())),
        ]
    }

    /// Whether a kernel whose blocks run along `seq` rows (keys) keeps 8 of them per invocation
    /// (else 4): for heads that are not too wide, and sequences that fill at least half of a
    /// 256-row block (shorter ones would mostly compute padding rows).
    fn rows8(&self, seq: usize) -> bool {
        capacity(self.d.div_ceil(4)) + capacity(self.dv.div_ceil(4)) <= ROWS8_MAX_CHUNKS
            && seq > 4 * WG
    }

    /// Blocks of rows (keys) per head along a sequence of `seq`.
    fn blocks(&self, seq: usize) -> usize {
        seq.div_ceil(WG * if self.rows8(seq) { 8 } else { 4 })
    }
}

/// The forward kernel: inputs q, k, v (rows padded to multiples of 4), mask (or a stand-in);
/// outputs y (B, HQ, SQ, DV) and lse (B, HQ, SQ).
#[derive(Debug)]
struct Forward(Plan);

impl Kernel for Forward {
    fn name(&self) -> &'static str {
        OP
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let p = &self.0;
        let nblk = p.blocks(p.sq);
        launch(
            p.pick(&registry::ATTENTION, &registry::ATTENTION_SG),
            p.constants(p.sq),
            &p.params(nblk),
            (p.batch * p.hq * nblk) as u64,
        )
    }
}

/// Zero-pads rows of `n` values to `np` (a multiple of 4).
#[derive(Debug)]
struct Pad {
    rows: usize,
    n: usize,
    np: usize,
}

impl Kernel for Pad {
    fn name(&self) -> &'static str {
        "attention_pad"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let params = AttnPadParams {
            rows: self.rows as u32,
            n: self.n as u32,
            np: self.np as u32,
            _pad: 0,
        };
        launch(
            &registry::ATTENTION_PAD,
            Vec::new(),
            &params,
            groups(self.rows * self.np, 64),
        )
    }
}

/// `x` with its last dimension zero-padded to a multiple of 4 (itself if it already is one), so
/// the kernels can read its rows as whole vec4s.
fn padded(x: &Tensor) -> Result<Tensor> {
    let n = x.shape.last().copied().unwrap_or(1);
    if n % 4 == 0 {
        return Ok(x.detach());
    }
    let np = n.div_ceil(4) * 4;
    let mut shape = x.shape.clone();
    if let Some(l) = shape.last_mut() {
        *l = np;
    }
    let rows = x.numel().checked_div(n).unwrap_or(0);
    Tensor::from_op(
        &x.ctx,
        Pad { rows, n, np },
        vec![x.detach()],
        shape,
        DType::F32,
    )
}

/// `delta = rowsum(dO ∘ y)` with the lse in base 2: inputs y, dO, lse; output (B, HQ, SQ, 2).
#[derive(Debug)]
struct Delta(Plan);

impl Kernel for Delta {
    fn name(&self) -> &'static str {
        "attention_delta"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let p = &self.0;
        launch(
            &registry::ATTENTION_DELTA,
            Vec::new(),
            &p.params(0),
            groups(p.batch * p.hq * p.sq, 64),
        )
    }
}

/// dQ: inputs q, k, v, mask, dO (padded rows), stats; output (B, HQ, SQ, D).
#[derive(Debug)]
struct BackwardQ(Plan);

impl Kernel for BackwardQ {
    fn name(&self) -> &'static str {
        "attention_backward_q"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let p = &self.0;
        let nblk = p.blocks(p.sq);
        launch(
            p.pick(
                &registry::ATTENTION_BACKWARD_Q,
                &registry::ATTENTION_BACKWARD_Q_SG,
            ),
            p.constants(p.sq),
            &p.params(nblk),
            (p.batch * p.hq * nblk) as u64,
        )
    }
}

/// dK and dV: inputs q, k, v, mask, dO (padded rows), stats; outputs (B, HKV, SKV, D) and
/// (B, HKV, SKV, DV).
#[derive(Debug)]
struct BackwardKv(Plan);

impl Kernel for BackwardKv {
    fn name(&self) -> &'static str {
        "attention_backward_kv"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let p = &self.0;
        let nblk = p.blocks(p.skv);
        launch(
            p.pick(
                &registry::ATTENTION_BACKWARD_KV,
                &registry::ATTENTION_BACKWARD_KV_SG,
            ),
            p.constants(p.skv),
            &p.params(nblk),
            (p.batch * p.hkv * nblk) as u64,
        )
    }
}

/// Gradients of attention with respect to q, k and v (the mask gets none).
#[derive(Debug)]
struct AttentionBackward {
    plan: Plan,
    /// The forward's output and per-row logsumexp (detached).
    y: Tensor,
    lse: Tensor,
    mask: Option<Tensor>,
}

impl Backward for AttentionBackward {
    fn name(&self) -> &'static str {
        OP
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let (Some(g), [q, k, v]) = (&grads[0], inputs) else {
            return Ok(vec![None; inputs.len()]);
        };
        let p = &self.plan;
        let ctx = &q.ctx;
        let stats = Tensor::from_op(
            ctx,
            Delta(p.clone()),
            vec![self.y.clone(), g.detach(), self.lse.clone()],
            vec![p.batch, p.hq, p.sq, 2],
            DType::F32,
        )?;
        let (qp, kp, vp, gp) = (padded(q)?, padded(k)?, padded(v)?, padded(g)?);
        let m = self.mask.clone().unwrap_or_else(|| qp.clone());
        let ins = vec![qp, kp, vp, m, gp, stats];
        let dq = if needs[0] {
            Some(Tensor::from_op(
                ctx,
                BackwardQ(p.clone()),
                ins.clone(),
                q.shape.clone(),
                DType::F32,
            )?)
        } else {
            None
        };
        let (dk, dv) = if needs[1] || needs[2] {
            let mut kv = Tensor::from_op_multi(
                ctx,
                BackwardKv(p.clone()),
                ins,
                vec![(k.shape.clone(), DType::F32), (v.shape.clone(), DType::F32)],
            )?;
            let dv = kv.pop();
            let dk = kv.pop();
            (dk.filter(|_| needs[1]), dv.filter(|_| needs[2]))
        } else {
            (None, None)
        };
        Ok(vec![dq, dk, dv])
    }
}

impl Tensor {
    /// Scaled dot-product attention: `softmax(Q·Kᵀ·scale + mask)·V`, with `self` as Q.
    ///
    /// Shapes: q `(B, Hq, Sq, D)`, k `(B, Hkv, Skv, D)`, v `(B, Hkv, Skv, Dv)`, where `Hq` is a
    /// multiple of `Hkv` (grouped-query attention: kv head `j` serves q heads `j·r .. j·r+r−1`,
    /// `r = Hq / Hkv`). `mask` is an optional additive f32 mask that broadcasts (NumPy rules) to
    /// `(B, Hq, Sq, Skv)` and may hold `-inf` (a row that sees no key at all gives zeros).
    /// `p.causal` lets query `i` see keys `j <= i`. Returns `(B, Hq, Sq, Dv)`. Head dims up to
    /// [`MAX_HEAD_DIM`] are supported.
    ///
    /// One fused kernel computes it without storing the score matrix; gradients flow to q, k
    /// and v (not to the mask).
    ///
    /// Errors: [`Error::ShapeMismatch`] (naming both shapes) when q, k, v or the mask disagree;
    /// [`Error::InvalidArgument`] for inputs that are not 4-D, a non-finite scale, or head dims
    /// over [`MAX_HEAD_DIM`]; a non-f32 input.
    pub fn attention(
        &self,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        p: &AttentionParams,
    ) -> Result<Tensor> {
        for t in [Some(self), Some(k), Some(v), mask].into_iter().flatten() {
            t.check_dtype(OP, DType::F32)?;
        }
        let mut plan = Plan::new(
            &self.shape,
            &k.shape,
            &v.shape,
            mask.map(|m| &m.shape[..]),
            p,
        )?;
        if attention_variant(&self.ctx) == AttentionVariant::Subgroup {
            plan.sg = true;
        }
        let (qp, kp, vp) = (padded(self)?, padded(k)?, padded(v)?);
        let m = mask.map_or_else(|| qp.clone(), Tensor::detach);
        let mut outs = Tensor::from_op_multi(
            &self.ctx,
            Forward(plan.clone()),
            vec![qp, kp, vp, m],
            vec![
                (vec![plan.batch, plan.hq, plan.sq, plan.dv], DType::F32),
                (vec![plan.batch, plan.hq, plan.sq], DType::F32),
            ],
        )?;
        let (Some(lse), Some(y)) = (outs.pop(), outs.pop()) else {
            return Err(Error::invalid(OP, "the forward kernel lost an output"));
        };
        let rule = AttentionBackward {
            plan,
            y: y.detach(),
            lse,
            mask: mask.map(Tensor::detach),
        };
        Ok(record1(y, &[self, k, v], rule))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_classes_round_up_to_unrollable_sizes() {
        let got: Vec<u32> = [0, 1, 2, 3, 4, 5, 8, 9, 16, 25, 32]
            .iter()
            .map(|&n| capacity(n))
            .collect();
        assert_eq!(got, vec![1, 1, 2, 3, 4, 8, 8, 12, 16, 28, 32]);
    }

    #[test]
    fn plan_checks_shapes_and_computes_mask_strides() {
        let p = AttentionParams::default();
        let plan = Plan::new(
            &[2, 4, 5, 8],
            &[2, 2, 7, 8],
            &[2, 2, 7, 6],
            Some(&[5, 7]),
            &p,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.mask, Some([0, 0, 7, 1]));
        assert_eq!((plan.hq / plan.hkv, plan.dv), (2, 6));
        assert!(Plan::new(&[2, 3, 5, 8], &[2, 2, 7, 8], &[2, 2, 7, 8], None, &p).is_err());
        assert!(Plan::new(&[2, 4, 5, 8], &[2, 2, 7, 8], &[2, 2, 6, 8], None, &p).is_err());
        assert!(Plan::new(
            &[2, 4, 5, 8],
            &[2, 2, 7, 8],
            &[2, 2, 7, 8],
            Some(&[5, 6]),
            &p
        )
        .is_err());
    }
}
