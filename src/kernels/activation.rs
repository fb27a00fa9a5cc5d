//! Activations with a parameter or a special function: leaky ReLU, GELU (exact and tanh form)
//! and erf (shaders/activation.wgsl). One elementwise kernel forward, one backward; the op is an
//! override constant.

use crate::autograd::{record1, Backward};
use crate::error::Result;
use crate::graph::{Kernel, Launch};
use crate::ir::Elementwise;
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, ActivationParams, Spec};
use crate::shape::numel;
use crate::{DType, Tensor};

/// The activation functions of shaders/activation.wgsl (codes as the shader's constants).
#[derive(Clone, Copy, Debug, PartialEq)]
enum ActivationOp {
    /// x for x >= 0, alpha·x below.
    LeakyRelu(f32),
    /// x·Φ(x) = 0.5x(1 + erf(x/√2)).
    Gelu,
    /// 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).
    GeluTanh,
    /// The error function.
    Erf,
}

impl ActivationOp {
    fn code(self) -> u32 {
        match self {
            ActivationOp::LeakyRelu(_) => 0,
            ActivationOp::Gelu => 1,
            ActivationOp::GeluTanh => 2,
            ActivationOp::Erf => 3,
        }
    }

    fn alpha(self) -> f32 {
        match self {
            ActivationOp::LeakyRelu(a) => a,
            _ => 0.0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ActivationOp::LeakyRelu(_) => "leaky_relu",
            ActivationOp::Gelu | ActivationOp::GeluTanh => "gelu",
            ActivationOp::Erf => "erf",
        }
    }

    fn launch(self, spec: &Spec<ActivationParams>, out: &[usize]) -> Launch {
        let n = numel(out);
        let params = ActivationParams {
            n: n as u32,
            alpha: self.alpha(),
            ..Default::default()
        };
        launch(spec, vec![("OP", self.code())], &params, groups(n, 256))
    }
}

/// y = f(x), elementwise (`activation`).
#[derive(Debug)]
struct Activation(ActivationOp);

impl Kernel for Activation {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        self.0.launch(&registry::ACTIVATION, out)
    }

    fn elementwise(&self) -> Option<Elementwise> {
        Some(Elementwise::Activation {
            code: self.0.code(),
            alpha: self.0.alpha(),
        })
    }
}

/// dx = dy·f'(x), elementwise (`activation_backward`).
#[derive(Debug)]
struct ActivationGrad(ActivationOp);

impl Kernel for ActivationGrad {
    fn name(&self) -> &'static str {
        "activation_backward"
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        self.0.launch(&registry::ACTIVATION_BACKWARD, out)
    }

    fn elementwise(&self) -> Option<Elementwise> {
        Some(Elementwise::ActivationGrad {
            code: self.0.code(),
            alpha: self.0.alpha(),
        })
    }
}

#[derive(Debug)]
struct ActivationBackward(ActivationOp);

impl Backward for ActivationBackward {
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
            ActivationGrad(self.0),
            vec![x.clone(), g.reshape(&x.shape)?],
            x.shape.clone(),
            DType::F32,
        )?;
        Ok(vec![Some(dx)])
    }
}

impl Tensor {
    fn activation(&self, op: ActivationOp) -> Result<Tensor> {
        self.check_dtype(op.name(), DType::F32)?;
        let y = Tensor::from_op(
            &self.ctx,
            Activation(op),
            vec![self.clone()],
            self.shape.clone(),
            DType::F32,
        )?;
        Ok(record1(y, &[self], ActivationBackward(op)))
    }

    /// Leaky ReLU (ONNX `LeakyRelu`): `x` where `x >= 0`, `alpha · x` below. The gradient at 0
    /// is taken as 1.
    pub fn leaky_relu(&self, alpha: f32) -> Result<Tensor> {
        self.activation(ActivationOp::LeakyRelu(alpha))
    }

    /// GELU (ONNX `Gelu`): the exact `0.5x(1 + erf(x/√2))`, or with `approximate_tanh` the
    /// tanh form `0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))`. Both are evaluated without
    /// cancellation for negative `x` (through erfc, respectively a logistic sigmoid), so small
    /// outputs keep their relative accuracy.
    pub fn gelu(&self, approximate_tanh: bool) -> Result<Tensor> {
        self.activation(if approximate_tanh {
            ActivationOp::GeluTanh
        } else {
            ActivationOp::Gelu
        })
    }

    /// The error function erf(x), elementwise (absolute error below 2e-7).
    pub fn erf(&self) -> Result<Tensor> {
        self.activation(ActivationOp::Erf)
    }
}
