//! `clamp(x, min, max)` elementwise (shaders/clamp.wgsl, ONNX Clip). The gradient passes where
//! `min <= x <= max` and is 0 outside.

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, ClampParams};
use crate::shape::numel;
use crate::{DType, Tensor};

#[derive(Debug)]
struct Clamp {
    lo: f32,
    hi: f32,
    /// The backward entry point (inputs x, g) rather than the forward one (input x).
    backward: bool,
}

impl Kernel for Clamp {
    fn name(&self) -> &'static str {
        if self.backward {
            "clamp_backward"
        } else {
            "clamp"
        }
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let n = numel(out);
        let p = ClampParams {
            numel: n as u32,
            lo: self.lo,
            hi: self.hi,
            _pad: 0,
        };
        let spec = if self.backward {
            &registry::CLAMP_BACKWARD
        } else {
            &registry::CLAMP
        };
        launch(spec, vec![], &p, groups(n, 256))
    }
}

#[derive(Debug)]
struct ClampBackward {
    lo: f32,
    hi: f32,
}

impl Backward for ClampBackward {
    fn name(&self) -> &'static str {
        "clamp"
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
        let kernel = Clamp {
            lo: self.lo,
            hi: self.hi,
            backward: true,
        };
        let dx = Tensor::from_op(
            &x.ctx,
            kernel,
            vec![x.detach(), g.clone()],
            x.shape.clone(),
            DType::F32,
        )?;
        Ok(vec![Some(dx)])
    }
}

impl Tensor {
    /// Each element limited to `[min, max]` (ONNX Clip; either bound may be infinite). NaN stays
    /// NaN. The gradient passes where `min <= x <= max`. `min > max` or a NaN bound is an error.
    pub fn clamp(&self, min: f32, max: f32) -> Result<Tensor> {
        self.check_dtype("clamp", DType::F32)?;
        if min.is_nan() || max.is_nan() || min > max {
            return Err(Error::invalid(
                "clamp",
                format!("bounds must satisfy min <= max, got min {min} and max {max}"),
            ));
        }
        let kernel = Clamp {
            lo: min,
            hi: max,
            backward: false,
        };
        let y = Tensor::from_op(
            &self.ctx,
            kernel,
            vec![self.clone()],
            self.shape.clone(),
            DType::F32,
        )?;
        Ok(record1(y, &[self], ClampBackward { lo: min, hi: max }))
    }
}
