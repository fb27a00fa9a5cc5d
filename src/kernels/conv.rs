//! 2-D convolution and transposed convolution with ONNX `Conv` / `ConvTranspose` semantics
//! (shaders/conv2d.wgsl), and their gradients.
//!
//! Both directions run on one implicit-GEMM kernel (`conv2d`, or `conv2d_narrow` for groups of
//! few output channels) that reads its weight through strides, so each op's data gradient is the
//! other op on the same weight: the gradient of a convolution with respect to its input is a
//! transposed convolution of the output gradient, and vice versa. The weight gradient of both
//! is one more kernel (`conv2d_backward_weight`, or its `_narrow` form).

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
pub use crate::ir::{Conv2dParams, ConvTranspose2dParams};
use crate::kernels::registry::{self, launch, ConvParams, ConvWeightParams};
use crate::{DType, Tensor};

/// Tile sizes of the kernels in shaders/conv2d.wgsl (they must match the shader). Groups with
/// fewer than `NARROW_BELOW` output channels use the narrow kernels, whose tiles hold fewer
/// channels, so that depthwise convolutions do not leave most of a tile idle.
const NARROW_BELOW: usize = 8;
/// `conv2d`: output pixels and channels per workgroup (64 invocations x 12 pixels, 16 channels).
const WIDE_PIXELS: usize = 768;
const WIDE_CHANNELS: usize = 16;
/// `conv2d_narrow`: 64 invocations x 16 pixels, 4 channels.
const NARROW_PIXELS: usize = 1024;
const NARROW_CHANNELS: usize = 4;
/// `conv2d_backward_weight`: units of (tap, 16 input channels) per workgroup, and input and
/// output channels per unit.
const WGRAD_UNITS: usize = 64;
const WGRAD_INPUTS: usize = 16;
const WGRAD_OUTPUTS: usize = 16;
/// `conv2d_backward_weight_narrow`: taps per unit (one output and one input channel). The
/// weight gradient also takes the narrow kernel for groups of fewer input channels than this,
/// where the wide kernel's 8-channel units would be mostly idle.
const WGRAD_NARROW_TAPS: usize = 4;
const WGRAD_NARROW_INPUTS_BELOW: usize = 4;
/// Workgroups the weight gradient aims for, splitting its reduction when the weight is small.
const WGRAD_TARGET_GROUPS: usize = 128;

/// Geometry of one convolution, in either direction: `x` (N, C, H, W) -> `y` (N, M, Ho, Wo)
/// with kernel (kH, kW). Direct: input row `ih = oh * stride - pad_top + kh * dilation`.
/// Transposed: output row `oh = ih * stride - pad_top + kh * dilation`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Geom {
    transposed: bool,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    m: usize,
    ho: usize,
    wo: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    /// `[top, left]`: the bottom and right pads only matter through the output size.
    pad: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
}

impl Geom {
    fn cg(&self) -> usize {
        self.c / self.groups
    }

    fn mg(&self) -> usize {
        self.m / self.groups
    }

    /// The same convolution run the other way: `y`'s shape in, `x`'s shape out. The data
    /// gradient of one direction is the other direction on the output gradient and the same
    /// weight.
    fn reversed(&self) -> Geom {
        Geom {
            transposed: !self.transposed,
            c: self.m,
            h: self.ho,
            w: self.wo,
            m: self.c,
            ho: self.h,
            wo: self.w,
            ..self.clone()
        }
    }
}

/// Which build of the wide forward kernel (which also computes input gradients) runs (see
/// [`crate::testing::with_conv_variant`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvVariant {
    /// The subgroup build (`conv2d_sg`) where the adapter runs 8-wide subgroups, else the
    /// plain `conv2d`.
    Auto,
    /// Always the plain `conv2d`.
    Plain,
}

thread_local! {
    static FORCED: std::cell::Cell<ConvVariant> = const { std::cell::Cell::new(ConvVariant::Auto) };
}

/// Runs `f` with convolutions recorded on this thread using `variant` (for tests and
/// comparisons); the previous choice comes back afterwards, also if `f` panics.
pub(crate) fn with_conv_variant<R>(variant: ConvVariant, f: impl FnOnce() -> R) -> R {
    struct Restore(ConvVariant);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|c| c.replace(variant)));
    f()
}

/// Whether kernels recorded now on this thread use the subgroup builds: not forced to the plain
/// ones, and the adapter runs 8-wide subgroups.
fn use_subgroups(ctx: &crate::Context) -> bool {
    FORCED.with(|c| c.get()) == ConvVariant::Auto && crate::kernels::subgroups_of_8(ctx)
}

/// One recorded forward convolution (either direction), optionally with a fused bias.
#[derive(Debug)]
struct ConvKernel {
    geom: Geom,
    has_bias: bool,
    /// Use the subgroup build of the wide kernel (`conv2d_sg`).
    sg: bool,
}

impl Kernel for ConvKernel {
    fn name(&self) -> &'static str {
        if self.geom.transposed {
            "conv_transpose2d"
        } else {
            "conv2d"
        }
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let g = &self.geom;
        let (cg, mg, kk) = (g.cg(), g.mg(), g.kh * g.kw);
        // Per axis: (a, os, phases, base, kstep, dv, unshift); see the header of
        // shaders/conv2d.wgsl. `base` is raised by `unshift * dv` so that the tap numerator
        // `base + phase + k * kstep` is never negative.
        let axis = |k: usize, taps: usize| -> (usize, usize, usize, i64, i64, i64, i64) {
            let (s, pad, d) = (g.stride[k], g.pad[k] as i64, g.dilation[k] as i64);
            let last = (taps as i64 - 1) * d;
            let (a, os, phases, base, kstep, dv, lowest) = if g.transposed {
                (1, s, s, pad, -d, s as i64, pad - last)
            } else {
                (s, 1, 1, -pad, d, 1, -pad)
            };
            let unshift = ((-lowest).max(0) as u64).div_ceil(dv as u64) as i64;
            (a, os, phases, base + unshift * dv, kstep, dv, unshift)
        };
        let (a_h, os_h, ph_h, base_h, kstep_h, dv_h, unshift_h) = axis(0, g.kh);
        let (a_w, os_w, ph_w, base_w, kstep_w, dv_w, unshift_w) = axis(1, g.kw);
        let (hq, wq) = (g.ho.div_ceil(os_h), g.wo.div_ceil(os_w));
        let (spec, tile_q, tile_m) = if mg < NARROW_BELOW {
            (&registry::CONV2D_NARROW, NARROW_PIXELS, NARROW_CHANNELS)
        } else if self.sg {
            (&registry::CONV2D_SG, WIDE_PIXELS, WIDE_CHANNELS)
        } else {
            (&registry::CONV2D, WIDE_PIXELS, WIDE_CHANNELS)
        };
        let tiles_q = (g.n * hq * wq).div_ceil(tile_q);
        let tiles_m = mg.div_ceil(tile_m);
        // Weight element (group, in-group output channel, c, kh, kw).
        let (w_group, w_m, w_c) = if g.transposed {
            (cg * mg * kk, kk, mg * kk)
        } else {
            (mg * cg * kk, cg * kk, kk)
        };
        let params = ConvParams {
            batch: g.n as u32,
            c: g.c as u32,
            h: g.h as u32,
            w: g.w as u32,
            m: g.m as u32,
            ho: g.ho as u32,
            wo: g.wo as u32,
            kh: g.kh as u32,
            kw: g.kw as u32,
            cg: cg as u32,
            mg: mg as u32,
            groups: g.groups as u32,
            hq: hq as u32,
            wq: wq as u32,
            a_h: a_h as u32,
            a_w: a_w as u32,
            os_h: os_h as u32,
            os_w: os_w as u32,
            ph_h: ph_h as u32,
            ph_w: ph_w as u32,
            base_h: base_h as i32,
            base_w: base_w as i32,
            kstep_h: kstep_h as i32,
            kstep_w: kstep_w as i32,
            dv_h: dv_h as u32,
            dv_w: dv_w as u32,
            tiles_q: tiles_q as u32,
            tiles_m: tiles_m as u32,
            w_group: w_group as u32,
            w_m: w_m as u32,
            w_c: w_c as u32,
            has_bias: u32::from(self.has_bias),
            unshift_h: unshift_h as i32,
            unshift_w: unshift_w as i32,
        };
        let count = ph_h * ph_w * g.groups * tiles_m * tiles_q;
        launch(spec, Vec::new(), &params, count as u64)
    }
}

/// The weight gradient of a direct convolution `x -> dy` with geometry `geom`, split into
/// `splits` partial sums over slices of `rows_per_split` output rows (n, oh).
#[derive(Debug)]
struct WeightGradKernel {
    geom: Geom,
    splits: usize,
    rows_per_split: usize,
}

impl WeightGradKernel {
    fn new(geom: Geom) -> Self {
        let rows = (geom.n * geom.ho).max(1);
        let want = WGRAD_TARGET_GROUPS.div_ceil(Self::tiles(&geom).max(1));
        // Keep slices at least 4 rows long: shorter ones cost more in partial sums than they
        // gain in parallelism.
        let splits = want.clamp(1, rows.div_ceil(4).max(1));
        let rows_per_split = rows.div_ceil(splits);
        WeightGradKernel {
            splits: rows.div_ceil(rows_per_split),
            rows_per_split,
            geom,
        }
    }

    fn narrow(geom: &Geom) -> bool {
        geom.mg() < NARROW_BELOW || geom.cg() < WGRAD_NARROW_INPUTS_BELOW
    }

    /// Workgroups per reduction slice.
    fn tiles(geom: &Geom) -> usize {
        let (col, m) = Self::col_m_tiles(geom);
        if Self::narrow(geom) {
            col
        } else {
            col * m * geom.groups
        }
    }

    /// (column tiles, output channel tiles per group).
    fn col_m_tiles(geom: &Geom) -> (usize, usize) {
        let (cg, mg, kk) = (geom.cg(), geom.mg(), geom.kh * geom.kw);
        if Self::narrow(geom) {
            let units = geom.m * cg * kk.div_ceil(WGRAD_NARROW_TAPS);
            (units.div_ceil(WGRAD_UNITS), 1)
        } else {
            let units = kk * cg.div_ceil(WGRAD_INPUTS);
            (units.div_ceil(WGRAD_UNITS), mg.div_ceil(WGRAD_OUTPUTS))
        }
    }
}

impl Kernel for WeightGradKernel {
    fn name(&self) -> &'static str {
        "conv2d_backward_weight"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let g = &self.geom;
        let (cg, mg) = (g.cg(), g.mg());
        let (tiles_col, tiles_m) = Self::col_m_tiles(g);
        let params = ConvWeightParams {
            batch: g.n as u32,
            c: g.c as u32,
            h: g.h as u32,
            w: g.w as u32,
            m: g.m as u32,
            ho: g.ho as u32,
            wo: g.wo as u32,
            kh: g.kh as u32,
            kw: g.kw as u32,
            cg: cg as u32,
            mg: mg as u32,
            groups: g.groups as u32,
            sh: g.stride[0] as u32,
            sw: g.stride[1] as u32,
            pt: g.pad[0] as i32,
            pl: g.pad[1] as i32,
            dh: g.dilation[0] as u32,
            dw: g.dilation[1] as u32,
            ncols: (cg * g.kh * g.kw) as u32,
            tiles_col: tiles_col as u32,
            tiles_m: tiles_m as u32,
            splits: self.splits as u32,
            rows_per_split: self.rows_per_split as u32,
            _pad: 0,
        };
        let spec = if Self::narrow(g) {
            &registry::CONV2D_BACKWARD_WEIGHT_NARROW
        } else {
            &registry::CONV2D_BACKWARD_WEIGHT
        };
        let count = self.splits * Self::tiles(g);
        launch(spec, Vec::new(), &params, count as u64)
    }
}

/// Runs the forward kernel of `geom` on `x` (its input-side shape) and `weight`, with an
/// optional bias. Not recorded for autograd.
fn run_conv(geom: Geom, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let out = vec![geom.n, geom.m, geom.ho, geom.wo];
    // Without a bias the kernel's bias binding gets a stand-in (never read).
    let b = match bias {
        Some(b) => b.clone(),
        None => crate::kernels::stand_in(&x.ctx)?,
    };
    Tensor::from_op(
        &x.ctx,
        ConvKernel {
            geom,
            has_bias: bias.is_some(),
            sg: use_subgroups(&x.ctx),
        },
        vec![x.clone(), weight.clone(), b],
        out,
        DType::F32,
    )
}

/// The weight gradient (M, C / groups, kH, kW) of the direct convolution `geom` from its input
/// `x` (N, C, H, W) and output gradient `dy` (N, M, Ho, Wo). Not recorded for autograd.
fn run_weight_grad(geom: Geom, x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let shape = vec![geom.m, geom.cg(), geom.kh, geom.kw];
    let kernel = WeightGradKernel::new(geom);
    let splits = kernel.splits;
    let mut partial_shape = shape.clone();
    partial_shape[0] *= splits;
    let partial = Tensor::from_op(
        &x.ctx,
        kernel,
        vec![x.clone(), dy.clone()],
        partial_shape,
        DType::F32,
    )?;
    if splits == 1 {
        return Ok(partial);
    }
    let numel: usize = shape.iter().product();
    partial
        .reshape(&[splits, numel])?
        .sum(&[0], false)?
        .reshape(&shape)
}

/// Checks the parts both ops share: dtypes, ranks, positive stride/dilation/groups.
fn check_common(
    op: &'static str,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Result<()> {
    x.check_dtype(op, DType::F32)?;
    weight.check_dtype(op, DType::F32)?;
    if let Some(b) = bias {
        b.check_dtype(op, DType::F32)?;
    }
    if x.rank() != 4 || weight.rank() != 4 {
        return Err(Error::invalid(
            op,
            format!(
                "input must be (N, C, H, W) and weight 4-D, got input {:?} and weight {:?}",
                x.shape, weight.shape
            ),
        ));
    }
    if stride.contains(&0) || dilation.contains(&0) || groups == 0 {
        return Err(Error::invalid(
            op,
            format!(
                "stride {stride:?}, dilation {dilation:?} and groups {groups} must all be >= 1"
            ),
        ));
    }
    if weight.shape[2] == 0 || weight.shape[3] == 0 {
        return Err(Error::invalid(
            op,
            format!("empty kernel in weight {:?}", weight.shape),
        ));
    }
    Ok(())
}

/// Checks a bias against the output channel count.
fn check_bias(op: &'static str, bias: Option<&Tensor>, m: usize, weight: &Tensor) -> Result<()> {
    if let Some(b) = bias {
        if b.shape != [m] {
            return Err(Error::invalid(
                op,
                format!(
                    "bias must have shape [{m}] (one value per output channel of weight {:?}), got {:?}",
                    weight.shape, b.shape
                ),
            ));
        }
    }
    Ok(())
}

/// Backward of both directions; `geom` is the op's own geometry.
#[derive(Debug)]
struct ConvBackward {
    geom: Geom,
}

impl Backward for ConvBackward {
    fn name(&self) -> &'static str {
        if self.geom.transposed {
            "conv_transpose2d"
        } else {
            "conv2d"
        }
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let n_in = inputs.len();
        let Some(g) = &grads[0] else {
            return Ok(vec![None; n_in]);
        };
        let (x, weight) = (&inputs[0], &inputs[1]);
        let geom = &self.geom;
        let dx = if needs[0] {
            Some(run_conv(geom.reversed(), g, weight, None)?)
        } else {
            None
        };
        let dw = if needs[1] {
            Some(if geom.transposed {
                // y = convT(x): the direct convolution g -> x has the weight's layout.
                run_weight_grad(geom.reversed(), g, x)?
            } else {
                run_weight_grad(geom.clone(), x, g)?
            })
        } else {
            None
        };
        let mut out = vec![dx, dw];
        if n_in == 3 {
            out.push(if needs[2] {
                Some(g.sum(&[0, 2, 3], false)?)
            } else {
                None
            });
        }
        Ok(out)
    }
}

/// Records `y` with its backward rule over `x`, `weight` and the optional bias.
fn finish(y: Tensor, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, geom: Geom) -> Tensor {
    let rule = ConvBackward { geom };
    match bias {
        Some(b) => record1(y, &[x, weight, b], rule),
        None => record1(y, &[x, weight], rule),
    }
}

impl Tensor {
    /// 2-D convolution (ONNX `Conv`, really a cross-correlation): `self` (N, C, H, W) with
    /// `weight` (M, C / groups, kH, kW) and an optional `bias` (M) gives (N, M, Ho, Wo) with
    /// `Ho = (H + pad_top + pad_bottom - dilation_h (kH - 1) - 1) / stride_h + 1` (likewise Wo).
    ///
    /// Differentiable with respect to the input, the weight and the bias.
    ///
    /// Errors: ranks other than 4 (input, weight) and 1 (bias), groups that do not divide C or
    /// M, a weight whose channel count is not C / groups (a [`Error::ShapeMismatch`] naming both
    /// shapes), a bias that is not (M), zero stride, dilation or groups, and a kernel larger
    /// than the padded input (an empty output).
    ///
    /// ```no_run
    /// # let ctx = kiln::Context::new()?;
    /// use kiln::kernels::conv::Conv2dParams;
    /// let x = kiln::Tensor::ones(&ctx, &[1, 1, 4, 4])?;
    /// let w = kiln::Tensor::ones(&ctx, &[1, 1, 3, 3])?;
    /// let y = x.conv2d(&w, None, &Conv2dParams::same([3, 3]))?;
    /// assert_eq!(y.shape(), &[1, 1, 4, 4]);
    /// # Ok::<(), kiln::Error>(())
    /// ```
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: &Conv2dParams,
    ) -> Result<Tensor> {
        const OP: &str = "conv2d";
        check_common(OP, self, weight, bias, p.stride, p.dilation, p.groups)?;
        let (n, c, h, w) = (self.shape[0], self.shape[1], self.shape[2], self.shape[3]);
        let (m, wc, kh, kw) = (
            weight.shape[0],
            weight.shape[1],
            weight.shape[2],
            weight.shape[3],
        );
        if c % p.groups != 0 || m % p.groups != 0 {
            return Err(Error::invalid(
                OP,
                format!(
                    "groups {} must divide the input channels (input {:?}) and the output channels (weight {:?})",
                    p.groups, self.shape, weight.shape
                ),
            ));
        }
        if wc * p.groups != c {
            return Err(Error::shape(OP, &self.shape, &weight.shape));
        }
        check_bias(OP, bias, m, weight)?;
        let [pt, pl, pb, pr] = p.padding;
        let size = |len: usize, pads: usize, k: usize, s: usize, d: usize| -> Option<usize> {
            let span = d * (k - 1) + 1;
            (len + pads).checked_sub(span).map(|r| r / s + 1)
        };
        let ho = size(h, pt + pb, kh, p.stride[0], p.dilation[0]);
        let wo = size(w, pl + pr, kw, p.stride[1], p.dilation[1]);
        let (Some(ho), Some(wo)) = (ho, wo) else {
            return Err(Error::invalid(
                OP,
                format!(
                    "the dilated kernel of weight {:?} (dilation {:?}) is larger than the padded input {:?} (padding {:?}): the output would be empty",
                    weight.shape, p.dilation, self.shape, p.padding
                ),
            ));
        };
        let geom = Geom {
            transposed: false,
            n,
            c,
            h,
            w,
            m,
            ho,
            wo,
            kh,
            kw,
            stride: p.stride,
            pad: [pt, pl],
            dilation: p.dilation,
            groups: p.groups,
        };
        let y = run_conv(geom.clone(), self, weight, bias)?;
        Ok(finish(y, self, weight, bias, geom))
    }

    /// 2-D transposed convolution (ONNX `ConvTranspose`): `self` (N, C, H, W) with `weight`
    /// (C, M / groups, kH, kW) and an optional `bias` (M) gives (N, M, Ho, Wo) with
    /// `Ho = stride_h (H - 1) + output_padding_h + dilation_h (kH - 1) + 1 - pad_top - pad_bottom`
    /// (likewise Wo). It is the gradient of [`Tensor::conv2d`] with respect to its input.
    ///
    /// Differentiable with respect to the input, the weight and the bias.
    ///
    /// Errors: ranks other than 4 (input, weight) and 1 (bias), groups that do not divide C,
    /// a weight whose first dimension is not C (a [`Error::ShapeMismatch`] naming both shapes),
    /// a bias that is not (M), zero stride, dilation or groups, and an output size <= 0.
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: &ConvTranspose2dParams,
    ) -> Result<Tensor> {
        const OP: &str = "conv_transpose2d";
        check_common(OP, self, weight, bias, p.stride, p.dilation, p.groups)?;
        let (n, c, h, w) = (self.shape[0], self.shape[1], self.shape[2], self.shape[3]);
        let (wc, mg, kh, kw) = (
            weight.shape[0],
            weight.shape[1],
            weight.shape[2],
            weight.shape[3],
        );
        if c % p.groups != 0 {
            return Err(Error::invalid(
                OP,
                format!(
                    "groups {} must divide the input channels (input {:?}, weight {:?})",
                    p.groups, self.shape, weight.shape
                ),
            ));
        }
        if wc != c {
            return Err(Error::shape(OP, &self.shape, &weight.shape));
        }
        let m = mg * p.groups;
        check_bias(OP, bias, m, weight)?;
        let [pt, pl, pb, pr] = p.padding;
        let size = |len: usize, op: usize, pads: usize, k: usize, s: usize, d: usize| {
            (s * len.saturating_sub(1) + op + d * (k - 1) + 1).checked_sub(pads)
        };
        let ho = size(
            h,
            p.output_padding[0],
            pt + pb,
            kh,
            p.stride[0],
            p.dilation[0],
        );
        let wo = size(
            w,
            p.output_padding[1],
            pl + pr,
            kw,
            p.stride[1],
            p.dilation[1],
        );
        let (Some(ho @ 1..), Some(wo @ 1..)) = (ho, wo) else {
            return Err(Error::invalid(
                OP,
                format!(
                    "padding {:?} crops the whole output of input {:?} with weight {:?} (stride {:?}, output_padding {:?}, dilation {:?})",
                    p.padding, self.shape, weight.shape, p.stride, p.output_padding, p.dilation
                ),
            ));
        };
        if h == 0 || w == 0 {
            return Err(Error::invalid(
                OP,
                format!("empty input image {:?}", self.shape),
            ));
        }
        let geom = Geom {
            transposed: true,
            n,
            c,
            h,
            w,
            m,
            ho,
            wo,
            kh,
            kw,
            stride: p.stride,
            pad: [pt, pl],
            dilation: p.dilation,
            groups: p.groups,
        };
        let y = run_conv(geom.clone(), self, weight, bias)?;
        Ok(finish(y, self, weight, bias, geom))
    }
}
