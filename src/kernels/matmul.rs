//! Matrix multiplication with NumPy `matmul` semantics (shaders/matmul.wgsl).
//!
//! Operands of rank >= 2 multiply their last two dimensions; the leading (batch) dimensions
//! broadcast by NumPy rules. A 1-D operand is promoted to a matrix (`a: [K] -> [1, K]`,
//! `b: [K] -> [K, 1]`) through a free reshape, and the promoted dimension is removed from the
//! result. Transposed operands are read through strides, never materialized.
//!
//! The kernel is chosen per adapter and shape when the op is recorded ([`MatmulVariant`]): on
//! discrete and integrated GPUs a workgroup-tiled kernel (shared-memory tiles); where the
//! adapter runs 8-wide subgroups (Mesa's CPU emulators on AVX2) and the operands' rows start on
//! vec4 boundaries, a vec4 kernel whose lanes share A's rows through subgroup broadcasts
//! (shaders/matmul_sg.wgsl, ~2.3x the scalar kernel's work per CPU-second there); elsewhere the
//! portable register-tiled scalar kernel (shaders/matmul.wgsl).

use crate::autograd::{record1, sum_to_shape, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::registry::{self, launch, slots8, MatmulParams};
use crate::shape::{broadcast_shape, broadcast_strides, numel};
use crate::{Context, DType, Tensor};
use std::cell::Cell;
use std::sync::OnceLock;

/// Rows of C one workgroup computes (must match `TILE_M` in shaders/matmul.wgsl).
const TILE_M: usize = 64;
/// Columns of C one workgroup computes (must match `TILE_N` in shaders/matmul.wgsl).
const TILE_N: usize = 96;

/// Rows of C one workgroup of the subgroup kernels computes (`TM` in shaders/matmul_sg.wgsl).
const SG_TILE_M: usize = 32;
/// Rows and columns of C one workgroup of the tiled GPU kernel computes (`GT` in
/// shaders/matmul.wgsl).
const TILE_G: usize = 64;

/// The kernel a matmul runs. [`MatmulVariant::Auto`] (the default) picks per adapter and shape;
/// the others force a kernel (for tests and benchmarks) where it can run, else the scalar one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatmulVariant {
    /// Choose by the rules in [`crate::testing::matmul_variant`].
    #[default]
    Auto,
    /// The portable kernel: any shape, strides and adapter (shaders/matmul.wgsl).
    Scalar,
    /// vec4 loads, A's rows shared through subgroup broadcasts; 32 x 12 per invocation.
    Subgroup,
    /// The same with 32 x 8 per invocation (narrower tiles, more workgroups).
    SubgroupNarrow,
    /// The GPU habit: 64 x 64 tiles staged through workgroup memory, 4 x 4 per invocation
    /// (shaders/matmul.wgsl `matmul_tiled`); any shape and strides.
    Tiled,
}

thread_local! {
    static FORCED: Cell<MatmulVariant> = const { Cell::new(MatmulVariant::Auto) };
}

/// Runs `f` with every matmul recorded on this thread using `variant` (where it can run; see
/// [`Tensor::matmul_variant`]). For tests and benchmarks that must cover a given kernel.
pub(crate) fn with_matmul_variant<R>(variant: MatmulVariant, f: impl FnOnce() -> R) -> R {
    /// Restores the previous choice when dropped, also when `f` panics.
    struct Restore(MatmulVariant);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|c| c.replace(variant)));
    f()
}

/// The variant to run for plan `p` on `ctx`, given a forced choice (`Auto` = none).
fn choose(ctx: &Context, p: &Plan, forced: MatmulVariant) -> MatmulVariant {
    let gpu = matches!(
        ctx.adapter_info().device_type,
        wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu
    );
    match forced {
        MatmulVariant::Tiled | MatmulVariant::Scalar => return forced,
        MatmulVariant::Auto if gpu => return MatmulVariant::Tiled,
        _ => {}
    }
    // vec4 rows: N (C's and B's rows) and each operand's contiguous dimension.
    let a_contig = if p.sa_k == 1 { p.k } else { p.m };
    let b_contig = if p.sb_n == 1 { p.n } else { p.k };
    let aligned = p.n.is_multiple_of(4) && a_contig.is_multiple_of(4) && b_contig.is_multiple_of(4);
    if !aligned || !crate::kernels::subgroups_of_8(ctx) {
        return MatmulVariant::Scalar;
    }
    match forced {
        MatmulVariant::Auto => {
            // Estimated time of each tile width: rounds of workgroups over the CPU's threads
            // (lavapipe runs one workgroup per thread at a time) times a workgroup's cost,
            // which grows with its columns; the 32 x 12 tile does ~10 % more work per
            // CPU-second than the 32 x 8 one (measured at 1024³), so it wins unless it pads N
            // more or leaves threads idle.
            static THREADS: OnceLock<usize> = OnceLock::new();
            let threads = *THREADS.get_or_init(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            });
            let rows = numel(&p.batch) * p.m.div_ceil(SG_TILE_M);
            let cost = |width: usize, speed: usize| {
                (rows * p.n.div_ceil(width)).div_ceil(threads) * width * 100 / speed
            };
            if cost(96, 110) <= cost(64, 100) {
                MatmulVariant::Subgroup
            } else {
                MatmulVariant::SubgroupNarrow
            }
        }
        v => v,
    }
}

/// One recorded matmul: `C[b] = op(A[b]) @ op(B[b])`, `op` an optional transpose of the last
/// two dimensions. The plan and the kernel are chosen (and checked) when the op is recorded.
#[derive(Debug)]
struct Matmul(Plan, MatmulVariant);

/// Everything the shader needs, derived from the (promoted, rank >= 2) operand shapes.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    m: usize,
    n: usize,
    k: usize,
    /// Broadcast batch shape of the output.
    batch: Vec<usize>,
    /// Element strides of A and B per output batch dimension (0 where broadcast).
    a_batch_strides: Vec<usize>,
    b_batch_strides: Vec<usize>,
    /// Element strides of A's rows (m) and depth (k), and of B's depth (k) and columns (n).
    sa_m: usize,
    sa_k: usize,
    sb_k: usize,
    sb_n: usize,
}

/// The last two dimensions of a rank >= 2 shape, and the batch dimensions before them.
fn split(shape: &[usize]) -> Option<(&[usize], usize, usize)> {
    match shape {
        [batch @ .., r, c] => Some((batch, *r, *c)),
        _ => None,
    }
}

/// Shapes and strides for `op(a) @ op(b)`, or a shape mismatch error naming both operands.
fn plan(a: &[usize], b: &[usize], transpose_a: bool, transpose_b: bool) -> Result<Plan> {
    let mismatch = || Error::shape("matmul", a, b);
    let (a_batch, ar, ac) = split(a).ok_or_else(mismatch)?;
    let (b_batch, br, bc) = split(b).ok_or_else(mismatch)?;
    // Stored A is (.., ar, ac): op(A) is (M, K) = (ar, ac), or (ac, ar) when transposed.
    let (m, k, sa_m, sa_k) = if transpose_a {
        (ac, ar, 1, ac)
    } else {
        (ar, ac, ac, 1)
    };
    let (kb, n, sb_k, sb_n) = if transpose_b {
        (bc, br, 1, bc)
    } else {
        (br, bc, bc, 1)
    };
    if k != kb {
        return Err(mismatch());
    }
    let batch = broadcast_shape("matmul", a_batch, b_batch).map_err(|_| mismatch())?;
    let scale = |s: Vec<usize>, size: usize| s.into_iter().map(|v| v * size).collect();
    Ok(Plan {
        m,
        n,
        k,
        a_batch_strides: scale(broadcast_strides(a_batch, &batch), ar * ac),
        b_batch_strides: scale(broadcast_strides(b_batch, &batch), br * bc),
        batch,
        sa_m,
        sa_k,
        sb_k,
        sb_n,
    })
}

impl Kernel for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let p = &self.0;
        let count = numel(&p.batch);
        let (spec, tile_m, tile_n) = match self.1 {
            MatmulVariant::Subgroup => (&registry::MATMUL_SG, SG_TILE_M, 96),
            MatmulVariant::SubgroupNarrow => (&registry::MATMUL_SG2, SG_TILE_M, 64),
            MatmulVariant::Tiled => (&registry::MATMUL_TILED, TILE_G, TILE_G),
            _ => (&registry::MATMUL, TILE_M, TILE_N),
        };
        let tiles_m = p.m.div_ceil(tile_m);
        let tiles_n = p.n.div_ceil(tile_n);
        let params = MatmulParams {
            m: p.m as u32,
            n: p.n as u32,
            k: p.k as u32,
            batch_count: count as u32,
            batch_rank: p.batch.len() as u32,
            sa_m: p.sa_m as u32,
            sa_k: p.sa_k as u32,
            sb_k: p.sb_k as u32,
            sb_n: p.sb_n as u32,
            tiles_m: tiles_m as u32,
            tiles_n: tiles_n as u32,
            _pad: 0,
            batch_shape: slots8(&p.batch),
            a_batch: slots8(&p.a_batch_strides),
            b_batch: slots8(&p.b_batch_strides),
        };
        let constants = if matches!(
            self.1,
            MatmulVariant::Subgroup | MatmulVariant::SubgroupNarrow
        ) {
            vec![
                ("TA", u32::from(p.sa_k != 1)),
                ("TB", u32::from(p.sb_n != 1)),
            ]
        } else {
            Vec::new()
        };
        launch(spec, constants, &params, (count * tiles_m * tiles_n) as u64)
    }
}

impl Tensor {
    /// Matrix product with NumPy `matmul` semantics: `[.., M, K] @ [.., K, N] -> [.., M, N]`,
    /// batch dimensions broadcast (`[2, 1, M, K] @ [3, K, N] -> [2, 3, M, N]`), and a 1-D
    /// operand is treated as a row (left) or column (right) vector whose dimension is dropped
    /// from the result.
    ///
    /// Errors: a 0-D operand ([`Error::InvalidArgument`]); inner dimensions that differ or batch
    /// dimensions that do not broadcast ([`Error::ShapeMismatch`]); a non-f32 operand.
    ///
    /// ```no_run
    /// # let ctx = kiln::Context::new()?;
    /// let a = kiln::Tensor::from_slice(&ctx, &[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// let v = kiln::Tensor::from_slice(&ctx, &[1.0f32, 1.0], &[2])?;
    /// assert_eq!(a.matmul(&v)?.to_vec::<f32>()?, vec![3.0, 7.0]);
    /// # Ok::<(), kiln::Error>(())
    /// ```
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        self.matmul_t(other, false, false)
    }

    /// [`Tensor::matmul`] of `op(self)` and `op(other)`, where `op` transposes the last two
    /// dimensions when its flag is set: `matmul_t(b, true, false)` is `selfᵀ @ b` for every
    /// batch. Transposes are read through strides, not copied. A 1-D operand is a vector, for
    /// which transposition means nothing: its flag is ignored.
    pub fn matmul_t(&self, other: &Tensor, transpose_a: bool, transpose_b: bool) -> Result<Tensor> {
        self.matmul_impl(other, transpose_a, transpose_b)
            .map(|(c, _)| c)
    }

    /// The kernel [`Tensor::matmul_t`] would run for these operands on this adapter (given
    /// any [`with_matmul_variant`] in force). The rules: discrete and integrated GPUs run the
    /// workgroup-tiled kernel (any shape); otherwise the subgroup kernels need an adapter
    /// with 8-wide subgroups and operands whose rows start on vec4 boundaries (N, and each
    /// operand's contiguous dimension, multiples of 4); between them, the one with the smaller
    /// estimated time from the workgroup count over the CPU's threads, the columns each
    /// workgroup computes (padding included) and their measured speeds. Everything else runs
    /// the scalar kernel.
    pub(crate) fn matmul_variant(
        &self,
        other: &Tensor,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<MatmulVariant> {
        let a = match self.shape[..] {
            [k] => vec![1, k],
            _ => self.shape.clone(),
        };
        let b = match other.shape[..] {
            [k] => vec![k, 1],
            _ => other.shape.clone(),
        };
        let (ta, tb) = (
            transpose_a && self.rank() > 1,
            transpose_b && other.rank() > 1,
        );
        let p =
            plan(&a, &b, ta, tb).map_err(|_| Error::shape("matmul", &self.shape, &other.shape))?;
        Ok(choose(&self.ctx, &p, FORCED.with(Cell::get)))
    }

    fn matmul_impl(
        &self,
        other: &Tensor,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<(Tensor, MatmulVariant)> {
        const OP: &str = "matmul";
        self.check_dtype(OP, DType::F32)?;
        other.check_dtype(OP, DType::F32)?;
        if self.rank() == 0 || other.rank() == 0 {
            return Err(Error::invalid(
                OP,
                format!(
                    "operands must have at least one dimension, got shapes {:?} and {:?}",
                    self.shape, other.shape
                ),
            ));
        }
        let a_vector = self.rank() == 1;
        let b_vector = other.rank() == 1;
        let a = if a_vector {
            self.reshape(&[1, self.numel()])?
        } else {
            self.clone()
        };
        let b = if b_vector {
            other.reshape(&[other.numel(), 1])?
        } else {
            other.clone()
        };
        let (ta, tb) = (transpose_a && !a_vector, transpose_b && !b_vector);
        let p = plan(&a.shape, &b.shape, ta, tb).map_err(|e| match e {
            Error::ShapeMismatch { .. } => Error::shape(OP, &self.shape, &other.shape),
            e => e,
        })?;
        let mut full = p.batch.clone();
        full.extend([p.m, p.n]);
        let mut result = p.batch.clone();
        if !a_vector {
            result.push(p.m);
        }
        if !b_vector {
            result.push(p.n);
        }
        let variant = choose(&self.ctx, &p, FORCED.with(Cell::get));
        let c = Tensor::from_op(
            &self.ctx,
            Matmul(p, variant),
            vec![a.clone(), b.clone()],
            full.clone(),
            DType::F32,
        )?;
        let c = record1(c, &[&a, &b], MatmulBackward { ta, tb });
        if result == full {
            Ok((c, variant))
        } else {
            Ok((c.reshape(&result)?, variant))
        }
    }
}

/// Gradients of `C = op(A) · op(B)`: each is another matmul (transposes read through strides),
/// summed over broadcast batch dims down to the operand's shape.
#[derive(Debug)]
struct MatmulBackward {
    ta: bool,
    tb: bool,
}

impl Backward for MatmulBackward {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = &grads[0] else {
            return Ok(vec![None, None]);
        };
        let (a, b) = (&inputs[0], &inputs[1]);
        let (ta, tb) = (self.ta, self.tb);
        let da = if needs[0] {
            let d = if ta {
                b.matmul_t(g, tb, true)?
            } else {
                g.matmul_t(b, false, !tb)?
            };
            Some(sum_to_shape(&d, &a.shape)?)
        } else {
            None
        };
        let db = if needs[1] {
            let d = if tb {
                g.matmul_t(a, true, ta)?
            } else {
                a.matmul_t(g, !ta, false)?
            };
            Some(sum_to_shape(&d, &b.shape)?)
        } else {
            None
        };
        Ok(vec![da, db])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_sizes_match_the_shader() {
        let src = crate::shaders::shader_source("matmul").unwrap_or_default();
        assert!(src.contains(&format!("const TILE_M: u32 = {TILE_M}u;")));
        assert!(src.contains(&format!("const TILE_N: u32 = {TILE_N}u;")));
        assert!(src.contains(&format!("const GT: u32 = {TILE_G}u;")));
        let sg = crate::shaders::shader_source("matmul_sg").unwrap_or_default();
        assert!(sg.contains(&format!("const TM: u32 = {SG_TILE_M}u;")));
    }

    #[test]
    fn plan_broadcasts_batches_and_swaps_strides_for_transposes() {
        let p = plan(&[2, 1, 3, 4], &[5, 6, 4], true, true);
        assert!(
            p.is_err(),
            "transposed A is (4, 3), B^T is (4, 6): inner 3 vs 4"
        );
        let p = plan(&[2, 1, 4, 3], &[5, 6, 4], true, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.m, p.n, p.k), (3, 6, 4));
        assert_eq!(p.batch, vec![2, 5]);
        assert_eq!(p.a_batch_strides, vec![12, 0]);
        assert_eq!(p.b_batch_strides, vec![0, 24]);
        assert_eq!((p.sa_m, p.sa_k, p.sb_k, p.sb_n), (1, 3, 1, 4));
    }
}
