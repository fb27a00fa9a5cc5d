//! Strided slices (shaders/slice.wgsl, ONNX Slice) and their backward, which spreads the
//! upstream gradient back into a zero tensor of the input's shape.

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{self, islots8, launch, slots8, SliceBackwardParams, SliceParams};
use crate::shape::{self, numel};
use crate::{DType, Tensor};

/// Per input dim: the first index taken and the step (every dim, not only the sliced ones).
#[derive(Clone, Debug)]
struct Window {
    starts: Vec<i64>,
    steps: Vec<i64>,
}

#[derive(Debug)]
struct Slice(Window);

impl Kernel for Slice {
    fn name(&self) -> &'static str {
        "slice"
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let strides = shape::strides(inputs[0]);
        let n = numel(out);
        let base: i64 = if n == 0 {
            0
        } else {
            self.0
                .starts
                .iter()
                .zip(&strides)
                .map(|(&s, &st)| s * st as i64)
                .sum()
        };
        let step_strides: Vec<i64> = self
            .0
            .steps
            .iter()
            .zip(&strides)
            .map(|(&s, &st)| s * st as i64)
            .collect();
        let p = SliceParams {
            numel: n as u32,
            rank: out.len() as u32,
            base: base as u32,
            _pad: 0,
            shape: slots8(out),
            step_strides: islots8(&step_strides),
        };
        launch(&registry::SLICE, vec![], &p, groups(n, 256))
    }
}

/// Input: the upstream gradient (the slice's shape). Output: the input's shape.
#[derive(Debug)]
struct SliceGrad(Window);

impl Kernel for SliceGrad {
    fn name(&self) -> &'static str {
        "slice_backward"
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let n = numel(out);
        let p = SliceBackwardParams {
            numel: n as u32,
            rank: out.len() as u32,
            _pad0: 0,
            _pad1: 0,
            in_shape: slots8(out),
            starts: islots8(&self.0.starts),
            steps: islots8(&self.0.steps),
            out_shape: slots8(inputs[0]),
        };
        launch(&registry::SLICE_BACKWARD, vec![], &p, groups(n, 256))
    }
}

#[derive(Debug)]
struct SliceBackward(Window);

impl Backward for SliceBackward {
    fn name(&self) -> &'static str {
        "slice"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        _needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = &grads[0] else {
            return Ok(vec![None]);
        };
        let x = &inputs[0];
        let dx = Tensor::from_op(
            &x.ctx,
            SliceGrad(self.0.clone()),
            vec![g.clone()],
            x.shape.clone(),
            DType::F32,
        )?;
        Ok(vec![Some(dx)])
    }
}

/// ONNX Slice's rule for one axis of size `dim`: the first index and the length taken.
fn resolve(dim: usize, start: i64, end: i64, step: i64) -> (i64, usize) {
    let d = dim as i64;
    let start = if start < 0 {
        start.saturating_add(d)
    } else {
        start
    };
    let end = if end < 0 { end.saturating_add(d) } else { end };
    let (start, end) = if step > 0 {
        (start.clamp(0, d), end.clamp(0, d))
    } else {
        (start.clamp(0, (d - 1).max(0)), end.clamp(-1, d - 1))
    };
    // Both spans and strides are non-negative here, so this rounds up.
    let (span, stride) = if step > 0 {
        ((end - start).max(0), step)
    } else {
        ((start - end).max(0), -step)
    };
    let len = if span == 0 {
        0
    } else {
        (span - 1) / stride + 1
    };
    (start, len as usize)
}

impl Tensor {
    /// A strided slice, like ONNX Slice: along each of `axes` (negative counts from the end)
    /// take indices `start, start + step, ...` up to but excluding `end`. Negative starts and
    /// ends count from the end of the axis, out-of-range values are clamped, and a negative
    /// step walks backwards. `starts`, `ends` and `steps` have one entry per axis; a step of 0
    /// or a repeated axis is an error. Gradients flow back to the positions taken.
    pub fn slice(
        &self,
        axes: &[isize],
        starts: &[i64],
        ends: &[i64],
        steps: &[i64],
    ) -> Result<Tensor> {
        self.check_dtype("slice", DType::F32)?;
        if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
            return Err(Error::invalid(
                "slice",
                format!(
                    "axes, starts, ends and steps need one entry each per axis, got {}, {}, {} and {}",
                    axes.len(),
                    starts.len(),
                    ends.len(),
                    steps.len()
                ),
            ));
        }
        let rank = self.rank();
        let mut w = Window {
            starts: vec![0; rank],
            steps: vec![1; rank],
        };
        let mut out = self.shape.clone();
        let mut seen = vec![false; rank];
        for (k, &a) in axes.iter().enumerate() {
            let d = shape::axis("slice", a, rank)?;
            if std::mem::replace(&mut seen[d], true) {
                return Err(Error::invalid(
                    "slice",
                    format!("axis {a} is repeated in axes {axes:?}"),
                ));
            }
            if steps[k] == 0 {
                return Err(Error::invalid("slice", format!("step of axis {a} is 0")));
            }
            let (start, len) = resolve(self.shape[d], starts[k], ends[k], steps[k]);
            w.starts[d] = start;
            w.steps[d] = steps[k];
            out[d] = len;
        }
        let y = Tensor::from_op(
            &self.ctx,
            Slice(w.clone()),
            vec![self.detach()],
            out,
            DType::F32,
        )?;
        Ok(record1(y, &[self], SliceBackward(w)))
    }

    /// `len` consecutive indices from `start` along `axis` (a slice with step 1); the range
    /// must lie inside the axis.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = shape::axis("narrow", axis, self.rank())?;
        if start + len > self.shape[d] {
            return Err(Error::invalid(
                "narrow",
                format!(
                    "range {start}..{} is outside axis {axis} of shape {:?}",
                    start + len,
                    self.shape
                ),
            ));
        }
        self.slice(
            &[d as isize],
            &[start as i64],
            &[(start + len) as i64],
            &[1],
        )
    }
}
