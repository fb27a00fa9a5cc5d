//! Elementwise unary math and tensor-scalar ops (shaders/unary.wgsl).

use crate::autograd::{record1, Backward};
use crate::error::Result;
use crate::graph::{Kernel, Launch};
pub use crate::ir::UnaryOp;
use crate::ir::{BinaryOp, Elementwise};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, UnaryParams};
use crate::{DType, Tensor};

#[derive(Debug)]
struct Unary(UnaryOp);

impl Kernel for Unary {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let n = crate::shape::numel(out);
        let params = UnaryParams {
            numel: n as u32,
            ..Default::default()
        };
        launch(
            &registry::UNARY,
            vec![("OP", self.0.code())],
            &params,
            groups(n, 256),
        )
    }

    fn elementwise(&self) -> Option<Elementwise> {
        Some(Elementwise::Unary(self.0))
    }
}

#[derive(Clone, Copy, Debug)]
struct Scalar {
    op: BinaryOp,
    value: f32,
    scalar_first: bool,
}

impl Scalar {
    /// `scalar` (1 read) or `scalar_backward` (2 reads), which share the parameters.
    fn launch_entry(&self, spec: &registry::Spec<UnaryParams>, out: &[usize]) -> Launch {
        let n = crate::shape::numel(out);
        let params = UnaryParams {
            numel: n as u32,
            scalar: self.value,
            scalar_first: u32::from(self.scalar_first),
            _pad: 0,
        };
        launch(spec, vec![("OP", self.op.code())], &params, groups(n, 256))
    }
}

impl Kernel for Scalar {
    fn name(&self) -> &'static str {
        self.op.name()
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        self.launch_entry(&registry::SCALAR, out)
    }

    fn elementwise(&self) -> Option<Elementwise> {
        Some(Elementwise::Scalar {
            op: self.op,
            value: self.value,
            scalar_first: self.scalar_first,
        })
    }
}

/// dx = dy * f'(x), one kernel (`unary_backward`).
#[derive(Debug)]
struct UnaryGrad(UnaryOp);

impl Kernel for UnaryGrad {
    fn name(&self) -> &'static str {
        "unary_backward"
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let n = crate::shape::numel(out);
        let params = UnaryParams {
            numel: n as u32,
            ..Default::default()
        };
        launch(
            &registry::UNARY_BACKWARD,
            vec![("OP", self.0.code())],
            &params,
            groups(n, 256),
        )
    }

    fn elementwise(&self) -> Option<Elementwise> {
        Some(Elementwise::UnaryGrad(self.0))
    }
}

#[derive(Debug)]
struct UnaryBackward(UnaryOp);

impl Backward for UnaryBackward {
    fn name(&self) -> &'static str {
        self.0.name()
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
            UnaryGrad(self.0),
            vec![x.clone(), g.reshape(&x.shape)?],
            x.shape.clone(),
            DType::F32,
        )?;
        Ok(vec![Some(dx)])
    }
}

/// dx = dy * d(x op s)/dx, one kernel (`scalar_backward`).
#[derive(Debug)]
struct ScalarGrad(Scalar);

impl Kernel for ScalarGrad {
    fn name(&self) -> &'static str {
        "scalar_backward"
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        self.0.launch_entry(&registry::SCALAR_BACKWARD, out)
    }

    fn elementwise(&self) -> Option<Elementwise> {
        Some(Elementwise::ScalarGrad {
            op: self.0.op,
            value: self.0.value,
            scalar_first: self.0.scalar_first,
        })
    }
}

#[derive(Debug)]
struct ScalarBackward(Scalar);

impl Backward for ScalarBackward {
    fn name(&self) -> &'static str {
        self.0.op.name()
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
            ScalarGrad(self.0),
            vec![x.clone(), g.reshape(&x.shape)?],
            x.shape.clone(),
            DType::F32,
        )?;
        Ok(vec![Some(dx)])
    }
}

impl Tensor {
    /// Applies `op` to every element.
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        self.check_dtype(op.name(), DType::F32)?;
        let y = Tensor::from_op(
            &self.ctx,
            Unary(op),
            vec![self.clone()],
            self.shape.clone(),
            DType::F32,
        )?;
        Ok(record1(y, &[self], UnaryBackward(op)))
    }

    /// `self OP value` elementwise (or `value OP self` when `scalar_first`).
    pub fn scalar_op(&self, op: BinaryOp, value: f32, scalar_first: bool) -> Result<Tensor> {
        self.check_dtype(op.name(), DType::F32)?;
        let spec = Scalar {
            op,
            value,
            scalar_first,
        };
        let y = Tensor::from_op(
            &self.ctx,
            spec,
            vec![self.clone()],
            self.shape.clone(),
            DType::F32,
        )?;
        Ok(record1(y, &[self], ScalarBackward(spec)))
    }

    /// -x
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }
    /// |x|
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs)
    }
    /// e^x
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }
    /// ln x
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }
    /// √x
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }
    /// max(x, 0)
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }
    /// 1 / (1 + e^-x)
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }
    /// tanh x
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }
    /// x²
    pub fn square(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Square)
    }
    /// 1 / x
    pub fn recip(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }
    /// sin x
    pub fn sin(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sin)
    }
    /// cos x
    pub fn cos(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Cos)
    }
    /// x + v
    pub fn add_scalar(&self, v: f32) -> Result<Tensor> {
        self.scalar_op(BinaryOp::Add, v, false)
    }
    /// x - v
    pub fn sub_scalar(&self, v: f32) -> Result<Tensor> {
        self.scalar_op(BinaryOp::Sub, v, false)
    }
    /// x * v
    pub fn mul_scalar(&self, v: f32) -> Result<Tensor> {
        self.scalar_op(BinaryOp::Mul, v, false)
    }
    /// x / v
    pub fn div_scalar(&self, v: f32) -> Result<Tensor> {
        self.scalar_op(BinaryOp::Div, v, false)
    }
    /// x ^ v
    pub fn pow_scalar(&self, v: f32) -> Result<Tensor> {
        self.scalar_op(BinaryOp::Pow, v, false)
    }
}
