//! Elementwise binary ops with NumPy broadcasting (shaders/binary.wgsl).

use crate::autograd::{record1, sum_to_shape, Backward};
use crate::error::Result;
use crate::graph::{Kernel, Launch};
pub use crate::ir::BinaryOp;
use crate::ir::Elementwise;
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, slots8, BinaryParams};
use crate::shape::{broadcast_shape, broadcast_strides, numel};
use crate::{DType, Tensor};

/// The parameters of `a OP b` (and its partial derivatives) broadcast to `out`.
fn params(a: &[usize], b: &[usize], out: &[usize]) -> BinaryParams {
    BinaryParams {
        numel: numel(out) as u32,
        rank: out.len() as u32,
        same_shape: u32::from(a == out && b == out),
        _pad: 0,
        shape: slots8(out),
        a_strides: slots8(&broadcast_strides(a, out)),
        b_strides: slots8(&broadcast_strides(b, out)),
    }
}

#[derive(Debug)]
struct Binary(BinaryOp);

impl Kernel for Binary {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let n = numel(out);
        launch(
            &registry::BINARY,
            vec![("OP", self.0.code())],
            &params(inputs[0], inputs[1], out),
            groups(n, 256),
        )
    }

    fn elementwise(&self) -> Option<Elementwise> {
        Some(Elementwise::Binary(self.0))
    }
}

/// The partial derivative of `a OP b` with respect to one operand, times the upstream
/// gradient, in the broadcast shape (`binary_backward`).
#[derive(Debug)]
struct BinaryGrad {
    op: BinaryOp,
    which: u32,
}

impl Kernel for BinaryGrad {
    fn name(&self) -> &'static str {
        "binary_backward"
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        launch(
            &registry::BINARY_BACKWARD,
            vec![("OP", self.op.code()), ("WHICH", self.which)],
            &params(inputs[0], inputs[1], out),
            groups(numel(out), 256),
        )
    }

    fn elementwise(&self) -> Option<Elementwise> {
        Some(Elementwise::BinaryGrad {
            op: self.op,
            which: self.which,
        })
    }
}

/// `g * ∂(a OP b)/∂a` (`which` 0) or `∂/∂b` (`which` 1), in the broadcast shape of `a` and `b`
/// (which `g` must have). Not recorded for autograd.
pub(crate) fn partial(
    op: BinaryOp,
    which: u32,
    a: &Tensor,
    b: &Tensor,
    g: &Tensor,
) -> Result<Tensor> {
    Tensor::from_op(
        &g.ctx,
        BinaryGrad { op, which },
        vec![a.clone(), b.clone(), g.clone()],
        g.shape.clone(),
        DType::F32,
    )
}

#[derive(Debug)]
struct BinaryBackward(BinaryOp);

impl Backward for BinaryBackward {
    fn name(&self) -> &'static str {
        self.0.name()
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
        let mut out = Vec::with_capacity(2);
        for (which, operand) in [a, b].into_iter().enumerate() {
            if !needs[which] {
                out.push(None);
                continue;
            }
            let full = match (self.0, which) {
                (BinaryOp::Add, _) | (BinaryOp::Sub, 0) => g.clone(),
                (BinaryOp::Sub, _) => g.neg()?,
                _ => partial(self.0, which as u32, a, b, g)?,
            };
            out.push(Some(sum_to_shape(&full, &operand.shape)?));
        }
        Ok(out)
    }
}

impl Tensor {
    /// `self OP other` elementwise, broadcasting both to a common shape (NumPy rules).
    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Result<Tensor> {
        self.check_dtype(op.name(), DType::F32)?;
        other.check_dtype(op.name(), DType::F32)?;
        let out = broadcast_shape(op.name(), &self.shape, &other.shape)?;
        let y = Tensor::from_op(
            &self.ctx,
            Binary(op),
            vec![self.clone(), other.clone()],
            out,
            DType::F32,
        )?;
        Ok(record1(y, &[self, other], BinaryBackward(op)))
    }

    /// a + b, broadcasting.
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Add, other)
    }
    /// a - b, broadcasting.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Sub, other)
    }
    /// a * b, broadcasting.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Mul, other)
    }
    /// a / b, broadcasting.
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Div, other)
    }
    /// max(a, b), broadcasting.
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Max, other)
    }
    /// min(a, b), broadcasting.
    pub fn minimum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Min, other)
    }
    /// a ^ b, broadcasting.
    pub fn pow(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Pow, other)
    }
}
