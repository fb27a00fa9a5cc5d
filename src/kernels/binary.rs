//! Elementwise binary ops with NumPy broadcasting (shaders/binary.wgsl).

use crate::error::Result;
use crate::graph::{Kernel, Launch};
use crate::kernels::{groups, launch, put8};
use crate::shape::{broadcast_shape, broadcast_strides, numel};
use crate::{DType, Tensor};

/// Binary elementwise functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// a + b
    Add,
    /// a - b
    Sub,
    /// a * b
    Mul,
    /// a / b
    Div,
    /// max(a, b)
    Max,
    /// min(a, b)
    Min,
    /// a ^ b (NumPy semantics for negative bases with integer exponents)
    Pow,
}

impl BinaryOp {
    /// Every op, in shader-code order.
    pub const ALL: [BinaryOp; 7] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::Pow,
    ];

    pub(crate) fn code(self) -> u32 {
        self as u32
    }

    /// The op name, as used in errors.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "maximum",
            BinaryOp::Min => "minimum",
            BinaryOp::Pow => "pow",
        }
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
        let (a, b) = (inputs[0], inputs[1]);
        let mut w = vec![0u32; 28];
        w[0] = n as u32;
        w[1] = out.len() as u32;
        w[2] = u32::from(a == out && b == out);
        put8(&mut w, 4, out);
        put8(&mut w, 12, &broadcast_strides(a, out));
        put8(&mut w, 20, &broadcast_strides(b, out));
        launch(
            "binary",
            "binary",
            vec![("OP", self.0.code())],
            2,
            w,
            groups(n, 256),
        )
    }
}

impl Tensor {
    /// `self OP other` elementwise, broadcasting both to a common shape (NumPy rules).
    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Result<Tensor> {
        self.check_dtype(op.name(), DType::F32)?;
        other.check_dtype(op.name(), DType::F32)?;
        let out = broadcast_shape(op.name(), &self.shape, &other.shape)?;
        Tensor::from_op(
            &self.ctx,
            Binary(op),
            vec![self.clone(), other.clone()],
            out,
            DType::F32,
        )
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
