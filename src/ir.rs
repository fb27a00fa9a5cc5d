//! The op layer: what each op computes, as plain data shared by the kernels that run it, the
//! executor that fuses it, and the CPU references that check it. Nothing here touches the GPU.
//!
//! - [`UnaryOp`], [`BinaryOp`] and [`ReduceOp`]: the op families whose shaders switch on a code.
//! - `Elementwise`: the fusable form of every elementwise kernel (the executor's fusion input).
//! - [`Conv2dParams`], [`ConvTranspose2dParams`] and [`Pool2dParams`]: window attributes with
//!   ONNX semantics.

/// Unary elementwise functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// -x
    Neg,
    /// |x|
    Abs,
    /// e^x
    Exp,
    /// ln x
    Log,
    /// √x
    Sqrt,
    /// max(x, 0)
    Relu,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// tanh x
    Tanh,
    /// x²
    Square,
    /// 1 / x
    Recip,
    /// sin x
    Sin,
    /// cos x
    Cos,
}

impl UnaryOp {
    /// Every op, in shader-code order.
    pub const ALL: [UnaryOp; 12] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Square,
        UnaryOp::Recip,
        UnaryOp::Sin,
        UnaryOp::Cos,
    ];

    /// The code the shader switches on.
    pub(crate) fn code(self) -> u32 {
        self as u32
    }

    /// The op name, as used in errors.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Relu => "relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Square => "square",
            UnaryOp::Recip => "recip",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
        }
    }
}

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

/// Reductions the kernel knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum of the elements (0 for none).
    Sum,
    /// Arithmetic mean (NaN for none).
    Mean,
    /// Largest element; NaN if any element is NaN. Refused over zero elements.
    Max,
    /// Smallest element; NaN if any element is NaN. Refused over zero elements.
    Min,
}

impl ReduceOp {
    /// Every op, in shader-code order.
    pub const ALL: [ReduceOp; 4] = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min];

    /// The code the shader switches on.
    pub(crate) fn code(self) -> u32 {
        self as u32
    }

    /// The op name, as used in errors.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
        }
    }
}

/// An elementwise op the executor knows how to fuse. Operands are the kernel's inputs in order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Elementwise {
    /// `f(x)`.
    Unary(UnaryOp),
    /// `x OP value`, or `value OP x` when `scalar_first`.
    Scalar {
        op: BinaryOp,
        value: f32,
        scalar_first: bool,
    },
    /// `a OP b`, broadcasting.
    Binary(BinaryOp),
    /// `dy * f'(x)` for inputs `(x, dy)`.
    UnaryGrad(UnaryOp),
    /// `dy * d(x OP value)/dx` for inputs `(x, dy)`.
    ScalarGrad {
        op: BinaryOp,
        value: f32,
        scalar_first: bool,
    },
    /// `g * ∂(a OP b)/∂a` (`which` 0) or `∂/∂b` (1) for inputs `(a, b, g)`, broadcasting.
    BinaryGrad { op: BinaryOp, which: u32 },
    /// An activation of shaders/activation.wgsl (its op code), with leaky ReLU's slope.
    Activation { code: u32, alpha: f32 },
    /// `dy * f'(x)` of an activation, for inputs `(x, dy)`.
    ActivationGrad { code: u32, alpha: f32 },
}

impl Elementwise {
    pub(crate) fn arity(self) -> usize {
        match self {
            Elementwise::Unary(_) | Elementwise::Scalar { .. } | Elementwise::Activation { .. } => {
                1
            }
            Elementwise::Binary(_)
            | Elementwise::UnaryGrad(_)
            | Elementwise::ScalarGrad { .. }
            | Elementwise::ActivationGrad { .. } => 2,
            Elementwise::BinaryGrad { .. } => 3,
        }
    }

    pub(crate) fn scalar(self) -> Option<u32> {
        match self {
            Elementwise::Scalar { value, .. } | Elementwise::ScalarGrad { value, .. } => {
                Some(value.to_bits())
            }
            // Only leaky ReLU (code 0) reads its slope.
            Elementwise::Activation { code: 0, alpha }
            | Elementwise::ActivationGrad { code: 0, alpha } => Some(alpha.to_bits()),
            _ => None,
        }
    }
}

/// Attributes of [`Tensor::conv2d`](crate::Tensor::conv2d) (ONNX `Conv`).
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dParams {
    /// Step between windows, `[along H, along W]`; each >= 1.
    pub stride: [usize; 2],
    /// Zero padding `[top, left, bottom, right]` (ONNX `pads` order).
    pub padding: [usize; 4],
    /// Spacing between kernel taps, `[along H, along W]`; each >= 1.
    pub dilation: [usize; 2],
    /// Channel groups; must divide both the input and the output channels (`groups = C` is a
    /// depthwise convolution).
    pub groups: usize,
}

impl Default for Conv2dParams {
    /// Stride 1, no padding, dilation 1, one group.
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0; 4],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl Conv2dParams {
    /// "Same" padding for a `kernel` of `[kH, kW]` at stride 1 and dilation 1: the output has
    /// the input's height and width. Odd kernels pad `(k - 1) / 2` on each side; an even kernel's
    /// extra row or column of padding goes at the bottom or right (ONNX `SAME_UPPER`).
    pub fn same(kernel: [usize; 2]) -> Self {
        let [kh, kw] = kernel;
        let (th, tw) = (kh.saturating_sub(1), kw.saturating_sub(1));
        Conv2dParams {
            padding: [th / 2, tw / 2, th - th / 2, tw - tw / 2],
            ..Conv2dParams::default()
        }
    }
}

/// Attributes of [`Tensor::conv_transpose2d`](crate::Tensor::conv_transpose2d) (ONNX `ConvTranspose`).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose2dParams {
    /// Step between the input pixels' windows in the output, `[along H, along W]`; each >= 1.
    pub stride: [usize; 2],
    /// Rows and columns cropped from the full output `[top, left, bottom, right]` (ONNX `pads`).
    pub padding: [usize; 4],
    /// Rows and columns added at the bottom and right of the output (ONNX `output_padding`).
    pub output_padding: [usize; 2],
    /// Spacing between kernel taps, `[along H, along W]`; each >= 1.
    pub dilation: [usize; 2],
    /// Channel groups; must divide the input channels.
    pub groups: usize,
}

impl Default for ConvTranspose2dParams {
    /// Stride 1, no padding, no output padding, dilation 1, one group.
    fn default() -> Self {
        ConvTranspose2dParams {
            stride: [1, 1],
            padding: [0; 4],
            output_padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// The window of a 2-D pooling op.
///
/// Window `(oh, ow)` reads input rows `oh * stride[0] - padding[0] + a * dilation[0]` for
/// `a < kernel[0]`, and the matching columns. Padding is virtual: a padded position never wins
/// a max and adds nothing to an average.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool2dParams {
    /// Window size (height, width).
    pub kernel: [usize; 2],
    /// Step between windows (height, width); at least 1.
    pub stride: [usize; 2],
    /// Implicit padding (top, left, bottom, right), ONNX `pads` order `[t, l, b, r]`.
    pub padding: [usize; 4],
    /// Spacing between window taps (height, width); 1 is a dense window.
    pub dilation: [usize; 2],
    /// Average pooling only: divide by every tap inside the padded input (true) or only by
    /// the taps inside the input (false). Taps past the padded edge (which only `ceil_mode`
    /// creates) never count.
    pub count_include_pad: bool,
    /// Round the output size up rather than down, so a last partial window is kept when it
    /// starts inside the input or its top/left padding (ONNX and PyTorch `ceil_mode`).
    pub ceil_mode: bool,
}

impl Pool2dParams {
    /// A `kernel`-sized window with stride equal to the kernel, no padding, no dilation,
    /// `count_include_pad` false and `ceil_mode` false.
    pub fn new(kernel: [usize; 2]) -> Self {
        Pool2dParams {
            kernel,
            stride: kernel,
            padding: [0; 4],
            dilation: [1, 1],
            count_include_pad: false,
            ceil_mode: false,
        }
    }
}
