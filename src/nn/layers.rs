//! The layers: Dense, Conv2d, pooling, Flatten, activations, Dropout, BatchNorm2d, LayerNorm,
//! Embedding, RNN/LSTM/GRU and MultiHeadAttention. Shapes are batch-first, images NCHW.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::kernels::attention::AttentionParams;
use crate::kernels::conv::Conv2dParams;
use crate::kernels::pool::Pool2dParams;
use crate::kernels::recurrent;
use crate::nn::init::Init;
use crate::nn::{Layer, Parameter};
use crate::{Context, Tensor};

/// An elementwise activation, as a layer or fused after Dense/Conv2d.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// max(x, 0)
    Relu,
    /// tanh
    Tanh,
    /// logistic sigmoid
    Sigmoid,
    /// GELU (exact, or the tanh approximation)
    Gelu {
        /// Use the tanh approximation.
        tanh: bool,
    },
    /// max(x, alpha·x)
    LeakyRelu(f32),
    /// softmax over the last axis
    Softmax,
}

impl Activation {
    /// Applies the activation.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => x.relu(),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Gelu { tanh } => x.gelu(tanh),
            Activation::LeakyRelu(a) => x.leaky_relu(a),
            Activation::Softmax => x.softmax(-1),
        }
    }

    fn label(self) -> String {
        match self {
            Activation::Relu => "relu".into(),
            Activation::Tanh => "tanh".into(),
            Activation::Sigmoid => "sigmoid".into(),
            Activation::Gelu { tanh } => if tanh { "gelu_tanh" } else { "gelu" }.into(),
            Activation::LeakyRelu(a) => format!("leaky_relu({a})"),
            Activation::Softmax => "softmax".into(),
        }
    }
}

impl Layer for Activation {
    fn describe(&self) -> String {
        format!("Activation({})", self.label())
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        self.apply(x)
    }

    fn softmax_logits(&self, x: &Tensor, _training: bool) -> Option<Result<Tensor>> {
        (*self == Activation::Softmax).then(|| Ok(x.clone()))
    }
}

/// Fully connected: y = act(x · W + b), x (N, in), W (in, out).
pub struct Dense {
    w: Parameter,
    b: Parameter,
    activation: Option<Activation>,
    units: (usize, usize),
}

impl Dense {
    /// A dense layer with He-normal (or `init`) weights and zero bias.
    pub fn new(
        ctx: &Context,
        inputs: usize,
        units: usize,
        activation: Option<Activation>,
        seed: u64,
    ) -> Result<Self> {
        Self::with_init(ctx, inputs, units, activation, Init::default(), seed)
    }

    /// [`Dense::new`] with a chosen initializer.
    pub fn with_init(
        ctx: &Context,
        inputs: usize,
        units: usize,
        activation: Option<Activation>,
        init: Init,
        seed: u64,
    ) -> Result<Self> {
        Ok(Dense {
            w: Parameter::new(
                "kernel",
                init.make(ctx, &[inputs, units], inputs, units, seed)?,
            ),
            b: Parameter::new("bias", Tensor::zeros(ctx, &[units])?),
            activation,
            units: (inputs, units),
        })
    }

    /// The output activation, if any.
    pub fn activation(&self) -> Option<Activation> {
        self.activation
    }

    /// The layer without its activation (for fusing softmax into the loss). Applies to the
    /// last dimension: (..., in) -> (..., out).
    pub fn forward_linear(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() < 2 || x.shape().last() != Some(&self.units.0) {
            return Err(Error::shape("Dense", x.shape(), &[0, self.units.0]));
        }
        let rows = x.numel() / self.units.0;
        let mut out_shape = x.shape().to_vec();
        if let Some(last) = out_shape.last_mut() {
            *last = self.units.1;
        }
        x.reshape(&[rows, self.units.0])?
            .matmul(&self.w.get())?
            .add(&self.b.get())?
            .reshape(&out_shape)
    }
}

impl Layer for Dense {
    fn describe(&self) -> String {
        let act = self
            .activation
            .map(|a| format!(", {}", a.label()))
            .unwrap_or_default();
        format!("Dense({} -> {}{act})", self.units.0, self.units.1)
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        let y = self.forward_linear(x)?;
        match self.activation {
            Some(a) => a.apply(&y),
            None => Ok(y),
        }
    }

    fn parameters(&self) -> Vec<Parameter> {
        vec![self.w.clone(), self.b.clone()]
    }

    fn softmax_logits(&self, x: &Tensor, _training: bool) -> Option<Result<Tensor>> {
        (self.activation == Some(Activation::Softmax)).then(|| self.forward_linear(x))
    }
}

/// 2-D convolution over NCHW images, with optional fused activation.
pub struct Conv2d {
    w: Parameter,
    b: Parameter,
    params: Conv2dParams,
    activation: Option<Activation>,
    channels: (usize, usize, [usize; 2]),
}

impl Conv2d {
    /// `filters` kernels of size `kernel` over `in_channels`, He-normal weights, zero bias.
    pub fn new(
        ctx: &Context,
        in_channels: usize,
        filters: usize,
        kernel: [usize; 2],
        params: Conv2dParams,
        activation: Option<Activation>,
        seed: u64,
    ) -> Result<Self> {
        let groups = params.groups.max(1);
        if !in_channels.is_multiple_of(groups) || !filters.is_multiple_of(groups) {
            return Err(Error::invalid(
                "Conv2d",
                format!(
                    "groups {groups} must divide in_channels {in_channels} and filters {filters}"
                ),
            ));
        }
        let fan_in = in_channels / groups * kernel[0] * kernel[1];
        let shape = [filters, in_channels / groups, kernel[0], kernel[1]];
        Ok(Conv2d {
            w: Parameter::new(
                "kernel",
                Init::HeNormal.make(ctx, &shape, fan_in, filters, seed)?,
            ),
            b: Parameter::new("bias", Tensor::zeros(ctx, &[filters])?),
            params,
            activation,
            channels: (in_channels, filters, kernel),
        })
    }

    /// 'same' padding (stride 1, odd kernel): output keeps the input's height and width.
    pub fn same(
        ctx: &Context,
        in_channels: usize,
        filters: usize,
        kernel: usize,
        activation: Option<Activation>,
        seed: u64,
    ) -> Result<Self> {
        let params = Conv2dParams::same([kernel, kernel]);
        Self::new(
            ctx,
            in_channels,
            filters,
            [kernel, kernel],
            params,
            activation,
            seed,
        )
    }
}

impl Layer for Conv2d {
    fn describe(&self) -> String {
        let (c, m, k) = self.channels;
        let act = self
            .activation
            .map(|a| format!(", {}", a.label()))
            .unwrap_or_default();
        format!("Conv2d({c} -> {m}, {}x{}{act})", k[0], k[1])
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        let y = x.conv2d(&self.w.get(), Some(&self.b.get()), &self.params)?;
        match self.activation {
            Some(a) => a.apply(&y),
            None => Ok(y),
        }
    }

    fn parameters(&self) -> Vec<Parameter> {
        vec![self.w.clone(), self.b.clone()]
    }
}

/// Max pooling over NCHW images.
pub struct MaxPool2d(pub Pool2dParams);

impl MaxPool2d {
    /// A `k`×`k` window with stride `k`.
    pub fn new(k: usize) -> Self {
        MaxPool2d(Pool2dParams::new([k, k]))
    }
}

impl Layer for MaxPool2d {
    fn describe(&self) -> String {
        format!("MaxPool2d({}x{})", self.0.kernel[0], self.0.kernel[1])
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        x.max_pool2d(&self.0)
    }
}

/// Average pooling over NCHW images.
pub struct AvgPool2d(pub Pool2dParams);

impl AvgPool2d {
    /// A `k`×`k` window with stride `k`.
    pub fn new(k: usize) -> Self {
        AvgPool2d(Pool2dParams::new([k, k]))
    }
}

impl Layer for AvgPool2d {
    fn describe(&self) -> String {
        format!("AvgPool2d({}x{})", self.0.kernel[0], self.0.kernel[1])
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        x.avg_pool2d(&self.0)
    }
}

/// (N, ...) -> (N, product of the rest). A view: no kernel.
pub struct Flatten;

impl Layer for Flatten {
    fn describe(&self) -> String {
        "Flatten".into()
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        let n = x.shape().first().copied().unwrap_or(1);
        x.reshape(&[n, x.numel() / n.max(1)])
    }
}

/// Inverted dropout: in training, zeroes each element with probability `p` and scales the rest
/// by 1/(1-p); a new seeded mask every call. Identity in inference.
pub struct Dropout {
    p: f32,
    seed: u64,
    calls: AtomicU64,
}

impl Dropout {
    /// Dropout with rate `p`, masks derived from `seed`.
    pub fn new(p: f32, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid(
                "Dropout",
                format!("rate {p} is outside [0, 1)"),
            ));
        }
        Ok(Dropout {
            p,
            seed,
            calls: AtomicU64::new(0),
        })
    }
}

impl Layer for Dropout {
    fn describe(&self) -> String {
        format!("Dropout({})", self.p)
    }

    fn forward(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let k = if training {
            self.calls.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        let seed = self.seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x.dropout(self.p, training, seed)
    }
}

/// Batch normalization over the channels of NCHW (or NC) input: batch statistics and running
/// averages in training, running averages in inference.
pub struct BatchNorm2d {
    scale: Parameter,
    bias: Parameter,
    mean: Parameter,
    var: Parameter,
    momentum: f32,
    eps: f32,
}

impl BatchNorm2d {
    /// Scale 1, bias 0, running mean 0 and variance 1; PyTorch's momentum convention.
    pub fn new(ctx: &Context, channels: usize, momentum: f32, eps: f32) -> Result<Self> {
        Ok(BatchNorm2d {
            scale: Parameter::new("gamma", Tensor::ones(ctx, &[channels])?),
            bias: Parameter::new("beta", Tensor::zeros(ctx, &[channels])?),
            mean: Parameter::new("running_mean", Tensor::zeros(ctx, &[channels])?),
            var: Parameter::new("running_var", Tensor::ones(ctx, &[channels])?),
            momentum,
            eps,
        })
    }
}

impl Layer for BatchNorm2d {
    fn describe(&self) -> String {
        format!(
            "BatchNorm2d({})",
            self.scale.shape().first().copied().unwrap_or(0)
        )
    }

    fn forward(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        if training {
            let out = x.batch_norm_train(
                &self.scale.get(),
                &self.bias.get(),
                &self.mean.value(),
                &self.var.value(),
                self.momentum,
                self.eps,
            )?;
            self.mean.set(out.running_mean);
            self.var.set(out.running_var);
            Ok(out.y)
        } else {
            x.batch_norm_inference(
                &self.scale.get(),
                &self.bias.get(),
                &self.mean.value(),
                &self.var.value(),
                self.eps,
            )
        }
    }

    fn parameters(&self) -> Vec<Parameter> {
        vec![self.scale.clone(), self.bias.clone()]
    }

    fn buffers(&self) -> Vec<Parameter> {
        vec![self.mean.clone(), self.var.clone()]
    }
}

/// Layer normalization over the trailing dims given by `shape`.
pub struct LayerNorm {
    scale: Parameter,
    bias: Parameter,
    dims: usize,
    eps: f32,
}

impl LayerNorm {
    /// Normalizes over the last `shape.len()` dims, which must equal `shape`.
    pub fn new(ctx: &Context, shape: &[usize], eps: f32) -> Result<Self> {
        Ok(LayerNorm {
            scale: Parameter::new("gamma", Tensor::ones(ctx, shape)?),
            bias: Parameter::new("beta", Tensor::zeros(ctx, shape)?),
            dims: shape.len(),
            eps,
        })
    }
}

impl Layer for LayerNorm {
    fn describe(&self) -> String {
        format!("LayerNorm({:?})", self.scale.shape())
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        let axis = x.rank() as isize - self.dims as isize;
        x.layer_norm(
            axis,
            Some(&self.scale.get()),
            Some(&self.bias.get()),
            self.eps,
        )
    }

    fn parameters(&self) -> Vec<Parameter> {
        vec![self.scale.clone(), self.bias.clone()]
    }
}

/// Token embedding: i32 indices (any shape) -> `indices.shape + [dim]`.
pub struct Embedding {
    w: Parameter,
    size: (usize, usize),
}

impl Embedding {
    /// `vocab` rows of `dim`, N(0, 1) initialized.
    pub fn new(ctx: &Context, vocab: usize, dim: usize, seed: u64) -> Result<Self> {
        Ok(Embedding {
            w: Parameter::new(
                "embeddings",
                Tensor::randn(ctx, &[vocab, dim], 0.0, 1.0, seed)?,
            ),
            size: (vocab, dim),
        })
    }
}

impl Layer for Embedding {
    fn describe(&self) -> String {
        format!("Embedding({} x {})", self.size.0, self.size.1)
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        self.w.get().embedding(x)
    }

    fn parameters(&self) -> Vec<Parameter> {
        vec![self.w.clone()]
    }
}

/// Which recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// h = tanh(W x + R h + b)
    Rnn,
    /// LSTM (gates i, o, f, c)
    Lstm,
    /// GRU (gates z, r, h)
    Gru,
}

/// A recurrent layer over batch-first sequences (N, S, I) -> (N, S, H), or (N, H) with only the
/// last step.
pub struct Recurrent {
    cell: Cell,
    w: Parameter,
    r: Parameter,
    b: Parameter,
    hidden: usize,
    return_sequences: bool,
}

impl Recurrent {
    /// A layer of `cell` with Glorot-uniform weights and zero bias.
    pub fn new(
        ctx: &Context,
        cell: Cell,
        inputs: usize,
        hidden: usize,
        return_sequences: bool,
        seed: u64,
    ) -> Result<Self> {
        let g = match cell {
            Cell::Rnn => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        };
        Ok(Recurrent {
            cell,
            w: Parameter::new(
                "w",
                Init::GlorotUniform.make(ctx, &[g * hidden, inputs], inputs, hidden, seed)?,
            ),
            r: Parameter::new(
                "r",
                Init::GlorotUniform.make(ctx, &[g * hidden, hidden], hidden, hidden, seed ^ 1)?,
            ),
            b: Parameter::new("b", Tensor::zeros(ctx, &[2 * g * hidden])?),
            hidden,
            return_sequences,
        })
    }
}

impl Layer for Recurrent {
    fn describe(&self) -> String {
        format!("{:?}({})", self.cell, self.hidden)
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        if x.rank() != 3 {
            return Err(Error::invalid(
                "Recurrent",
                format!("expects (batch, seq, features), got {:?}", x.shape()),
            ));
        }
        let xs = x.permute(&[1, 0, 2])?;
        let (w, r, b) = (self.w.get(), self.r.get(), self.b.get());
        let out = match self.cell {
            Cell::Rnn => recurrent::rnn(&xs, &w, &r, Some(&b), None)?,
            Cell::Lstm => recurrent::lstm(&xs, &w, &r, Some(&b), None, None)?,
            Cell::Gru => recurrent::gru(&xs, &w, &r, Some(&b), None, true)?,
        };
        if self.return_sequences {
            out.y.permute(&[1, 0, 2])
        } else {
            Ok(out.h)
        }
    }

    fn parameters(&self) -> Vec<Parameter> {
        vec![self.w.clone(), self.r.clone(), self.b.clone()]
    }
}

/// Multi-head self-attention over (N, S, D): fused scaled dot-product attention between
/// learned projections, optionally causal.
pub struct MultiHeadAttention {
    wq: Parameter,
    wk: Parameter,
    wv: Parameter,
    wo: Parameter,
    heads: usize,
    dim: usize,
    causal: bool,
}

impl MultiHeadAttention {
    /// `heads` heads over model width `dim` (divisible by `heads`).
    pub fn new(ctx: &Context, dim: usize, heads: usize, causal: bool, seed: u64) -> Result<Self> {
        if heads == 0 || !dim.is_multiple_of(heads) {
            return Err(Error::invalid(
                "MultiHeadAttention",
                format!("width {dim} is not divisible by {heads} heads"),
            ));
        }
        let w = |k: u64, name: &str| -> Result<Parameter> {
            Ok(Parameter::new(
                name,
                Init::GlorotUniform.make(ctx, &[dim, dim], dim, dim, seed ^ k)?,
            ))
        };
        Ok(MultiHeadAttention {
            wq: w(1, "wq")?,
            wk: w(2, "wk")?,
            wv: w(3, "wv")?,
            wo: w(4, "wo")?,
            heads,
            dim,
            causal,
        })
    }

    /// Attention of queries from `x` over keys and values from `memory` (cross-attention when
    /// they differ). Both (N, S, D).
    pub fn attend(&self, x: &Tensor, memory: &Tensor) -> Result<Tensor> {
        let (n, s, d) = match x.shape() {
            [n, s, d] if *d == self.dim => (*n, *s, *d),
            other => return Err(Error::shape("MultiHeadAttention", other, &[0, 0, self.dim])),
        };
        let sm = memory.shape().get(1).copied().unwrap_or(0);
        let h = self.heads;
        let split = |t: &Tensor, w: &Parameter, len: usize| -> Result<Tensor> {
            t.reshape(&[n * len, d])?
                .matmul(&w.get())?
                .reshape(&[n, len, h, d / h])?
                .permute(&[0, 2, 1, 3])
        };
        let q = split(x, &self.wq, s)?;
        let k = split(memory, &self.wk, sm)?;
        let v = split(memory, &self.wv, sm)?;
        let p = AttentionParams {
            scale: None,
            causal: self.causal,
        };
        let y = q.attention(&k, &v, None, &p)?;
        y.permute(&[0, 2, 1, 3])?
            .reshape(&[n * s, d])?
            .matmul(&self.wo.get())?
            .reshape(&[n, s, d])
    }
}

impl Layer for MultiHeadAttention {
    fn describe(&self) -> String {
        format!(
            "MultiHeadAttention(width {}, {} heads{})",
            self.dim,
            self.heads,
            if self.causal { ", causal" } else { "" }
        )
    }

    fn forward(&self, x: &Tensor, _training: bool) -> Result<Tensor> {
        self.attend(x, x)
    }

    fn parameters(&self) -> Vec<Parameter> {
        vec![
            self.wq.clone(),
            self.wk.clone(),
            self.wv.clone(),
            self.wo.clone(),
        ]
    }
}
