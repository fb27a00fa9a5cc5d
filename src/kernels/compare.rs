//! Elementwise comparisons with NumPy broadcasting (shaders/compare.wgsl): f32 masks of 1.0
//! where the comparison holds and 0.0 elsewhere. Masks carry no gradient.

use crate::error::Result;
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, slots8, CompareParams};
use crate::shape::{broadcast_shape, broadcast_strides, numel};
use crate::{DType, Tensor};

/// A comparison (ONNX Equal, Less, LessOrEqual, Greater, GreaterOrEqual; `Ne` is Not(Equal)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// a == b
    Eq,
    /// a != b
    Ne,
    /// a < b
    Lt,
    /// a <= b
    Le,
    /// a > b
    Gt,
    /// a >= b
    Ge,
}

impl CompareOp {
    /// Every comparison, in code order.
    pub const ALL: [CompareOp; 6] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ];

    /// The op's name, for errors and labels.
    pub fn name(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
        }
    }

    /// The shader's `OP` constant.
    fn code(self) -> u32 {
        self as u32
    }

    /// The comparison on host values (what the kernel computes; IEEE 754 for NaN).
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            CompareOp::Lt => a < b,
            CompareOp::Le => a <= b,
            CompareOp::Gt => a > b,
            CompareOp::Ge => a >= b,
        }
    }
}

#[derive(Debug)]
struct Compare(CompareOp);

impl Kernel for Compare {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let n = numel(out);
        let (a, b) = (inputs[0], inputs[1]);
        let p = CompareParams {
            numel: n as u32,
            rank: out.len() as u32,
            same_shape: u32::from(a == out && b == out),
            _pad: 0,
            shape: slots8(out),
            a_strides: slots8(&broadcast_strides(a, out)),
            b_strides: slots8(&broadcast_strides(b, out)),
        };
        launch(
            &registry::COMPARE,
            vec![("OP", self.0.code())],
            &p,
            groups(n, 256),
        )
    }
}

impl Tensor {
    /// `self OP other` elementwise as an f32 mask (1.0 where it holds, else 0.0), broadcasting
    /// both to a common shape (NumPy rules). The mask carries no gradient.
    pub fn compare(&self, op: CompareOp, other: &Tensor) -> Result<Tensor> {
        self.check_dtype(op.name(), DType::F32)?;
        other.check_dtype(op.name(), DType::F32)?;
        let out = broadcast_shape(op.name(), &self.shape, &other.shape)?;
        Tensor::from_op(
            &self.ctx,
            Compare(op),
            vec![self.clone(), other.clone()],
            out,
            DType::F32,
        )
    }

    /// 1.0 where a == b, else 0.0 (broadcasting).
    pub fn eq(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(CompareOp::Eq, other)
    }
    /// 1.0 where a != b, else 0.0 (broadcasting).
    pub fn ne(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(CompareOp::Ne, other)
    }
    /// 1.0 where a < b, else 0.0 (broadcasting).
    pub fn lt(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(CompareOp::Lt, other)
    }
    /// 1.0 where a <= b, else 0.0 (broadcasting).
    pub fn le(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(CompareOp::Le, other)
    }
    /// 1.0 where a > b, else 0.0 (broadcasting).
    pub fn gt(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(CompareOp::Gt, other)
    }
    /// 1.0 where a >= b, else 0.0 (broadcasting).
    pub fn ge(&self, other: &Tensor) -> Result<Tensor> {
        self.compare(CompareOp::Ge, other)
    }
}
