//! Reproducible random tensors from the counter-based Philox4x32-10 generator
//! (shaders/random.wgsl; host reference in `kiln::reference::random`).
//!
//! Element `i` of a tensor is a pure function of the seed and `i`: the same seed gives the same
//! values whatever else is recorded or realized, and whatever the tensor's shape (a `[3, 5]`
//! tensor holds the first 15 values of the `[15]` one).

use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{launch, RandomParams, RANDOM};
use crate::{Context, DType, Tensor};

/// Elements one workgroup covers: 256 invocations, one 4-word Philox block each.
const ELEMENTS_PER_GROUP: usize = 256 * 4;

/// The distribution, as the shader's `DIST` override constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dist {
    Uniform = 0,
    Normal = 1,
}

#[derive(Debug)]
struct Random {
    name: &'static str,
    dist: Dist,
    seed: u64,
    /// Uniform: lo. Normal: mean.
    a: f32,
    /// Uniform: hi - lo. Normal: std.
    b: f32,
    /// Uniform: the largest value returned (just below hi). Unused for normal.
    cap: f32,
}

impl Kernel for Random {
    fn name(&self) -> &'static str {
        self.name
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let n = crate::shape::numel(out);
        let params = RandomParams {
            numel: n as u32,
            blocks: n.div_ceil(4) as u32,
            key_lo: self.seed as u32,
            key_hi: (self.seed >> 32) as u32,
            stream: crate::reference::random::STREAM,
            a: self.a,
            b: self.b,
            cap: self.cap,
        };
        launch(
            &RANDOM,
            vec![("DIST", self.dist as u32)],
            &params,
            groups(n, ELEMENTS_PER_GROUP),
        )
    }
}

impl Tensor {
    /// A tensor of `shape` with values uniform in [0, 1), reproducible from `seed`.
    ///
    /// Each value is the top 24 bits of a Philox4x32-10 output word times 2^-24, so it is a
    /// multiple of 2^-24 and never 1.
    ///
    /// ```no_run
    /// # let ctx = kiln::Context::new()?;
    /// let u = kiln::Tensor::rand(&ctx, &[2, 3], 42)?;
    /// assert!(u.to_vec::<f32>()?.iter().all(|&v| (0.0..1.0).contains(&v)));
    /// # Ok::<(), kiln::Error>(())
    /// ```
    pub fn rand(ctx: &Context, shape: &[usize], seed: u64) -> Result<Tensor> {
        uniform(ctx, "rand", shape, 0.0, 1.0, seed)
    }

    /// A tensor of `shape` with values uniform in [lo, hi): `lo + (hi - lo) * u` with `u` as in
    /// [`Tensor::rand`] (same seed, same `u`). Values that round up to `hi` are returned as
    /// the largest f32 below it. `lo == hi` gives a tensor of `lo`.
    ///
    /// Errors with [`Error::InvalidArgument`] when `lo > hi`, either bound is not finite, or
    /// `hi - lo` overflows f32.
    pub fn rand_uniform(
        ctx: &Context,
        shape: &[usize],
        lo: f32,
        hi: f32,
        seed: u64,
    ) -> Result<Tensor> {
        uniform(ctx, "rand_uniform", shape, lo, hi, seed)
    }

    /// A tensor of `shape` with normal values of mean `mean` and standard deviation `std`,
    /// reproducible from `seed`.
    ///
    /// Box-Muller on the word pairs of each Philox block: `u1 = ((x1 >> 8) + 1) * 2^-24` in
    /// (0, 1], `u2 = (x2 >> 8) * 2^-24`, giving `sqrt(-2 ln u1) * (cos, sin)(2 pi u2)`, so
    /// |value - mean| <= about 5.77 std.
    ///
    /// Errors with [`Error::InvalidArgument`] when `std < 0` or either argument is not finite.
    pub fn randn(ctx: &Context, shape: &[usize], mean: f32, std: f32, seed: u64) -> Result<Tensor> {
        const OP: &str = "randn";
        if !mean.is_finite() || !std.is_finite() {
            return Err(Error::invalid(
                OP,
                format!("mean {mean} and std {std} must be finite"),
            ));
        }
        if std < 0.0 {
            return Err(Error::invalid(OP, format!("std {std} is negative")));
        }
        let kernel = Random {
            name: OP,
            dist: Dist::Normal,
            seed,
            a: mean,
            b: std,
            cap: 0.0,
        };
        Tensor::from_op(ctx, kernel, vec![], shape.to_vec(), DType::F32)
    }
}

fn uniform(
    ctx: &Context,
    op: &'static str,
    shape: &[usize],
    lo: f32,
    hi: f32,
    seed: u64,
) -> Result<Tensor> {
    if !lo.is_finite() || !hi.is_finite() {
        return Err(Error::invalid(
            op,
            format!("bounds lo {lo} and hi {hi} must be finite"),
        ));
    }
    if lo > hi {
        return Err(Error::invalid(
            op,
            format!("lower bound {lo} is above upper bound {hi}"),
        ));
    }
    let range = hi - lo;
    if !range.is_finite() {
        return Err(Error::invalid(
            op,
            format!("range hi - lo = {hi} - {lo} overflows f32"),
        ));
    }
    let cap = if lo < hi { hi.next_down() } else { hi };
    let kernel = Random {
        name: op,
        dist: Dist::Uniform,
        seed,
        a: lo,
        b: range,
        cap,
    };
    Tensor::from_op(ctx, kernel, vec![], shape.to_vec(), DType::F32)
}
