//! Constant tensors made on the GPU (shaders/fill.wgsl).

use crate::error::Result;
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{launch, FillParams, FILL};
use crate::{Context, DType, Tensor};

#[derive(Debug)]
struct Fill(f32);

impl Kernel for Fill {
    fn name(&self) -> &'static str {
        "full"
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let n = crate::shape::numel(out);
        let params = FillParams {
            numel: n as u32,
            value: self.0,
        };
        launch(&FILL, vec![], &params, groups(n, 256))
    }
}

impl Tensor {
    /// A tensor of `shape` filled with `value` (recorded; filled on the GPU when realized).
    pub fn full(ctx: &Context, shape: &[usize], value: f32) -> Result<Tensor> {
        Tensor::from_op(ctx, Fill(value), vec![], shape.to_vec(), DType::F32)
    }

    /// A tensor of zeros.
    pub fn zeros(ctx: &Context, shape: &[usize]) -> Result<Tensor> {
        Tensor::full(ctx, shape, 0.0)
    }

    /// A tensor of ones.
    pub fn ones(ctx: &Context, shape: &[usize]) -> Result<Tensor> {
        Tensor::full(ctx, shape, 1.0)
    }
}
