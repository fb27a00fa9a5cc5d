//! Embedding lookup (shaders/embedding.wgsl) with a deterministic, atomic-free weight gradient.

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, EmbeddingParams};
use crate::shape::numel;
use crate::{DType, Tensor};

/// Vocabulary rows and columns one backward workgroup owns (`ROWS`, `COLS` in the shader).
const ROWS: usize = 16;
const COLS: usize = 64;

/// Parameter words shared by both entry points.
fn params(vocab: usize, dim: usize, count: usize) -> EmbeddingParams {
    EmbeddingParams {
        numel: (count * dim) as u32,
        dim: dim as u32,
        vocab: vocab as u32,
        count: count as u32,
        row_blocks: vocab.div_ceil(ROWS) as u32,
        col_blocks: dim.div_ceil(COLS) as u32,
        tiles: count.div_ceil(COLS) as u32,
        _pad: 0,
    }
}

/// Inputs: weight (V, D), indices (any shape, N elements). Output: (indices.shape, D).
#[derive(Debug)]
struct Embedding;

impl Kernel for Embedding {
    fn name(&self) -> &'static str {
        "embedding"
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let (vocab, dim) = match inputs[0] {
            [v, d] => (*v, *d),
            _ => (0, 0),
        };
        let count = numel(inputs[1]);
        let n = numel(out);
        launch(
            &registry::EMBEDDING,
            vec![],
            &params(vocab, dim, count),
            groups(n, 256),
        )
    }
}

/// Inputs: indices (N elements), upstream gradient (N·D elements). Output: dW (V, D).
#[derive(Debug)]
struct EmbeddingGrad;

impl Kernel for EmbeddingGrad {
    fn name(&self) -> &'static str {
        "embedding_backward"
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let (vocab, dim) = match out {
            [v, d] => (*v, *d),
            _ => (0, 0),
        };
        let count = numel(inputs[0]);
        let wgs = if vocab * dim == 0 {
            0
        } else {
            (vocab.div_ceil(ROWS) * dim.div_ceil(COLS)) as u64
        };
        launch(
            &registry::EMBEDDING_BACKWARD,
            vec![],
            &params(vocab, dim, count),
            wgs,
        )
    }
}

#[derive(Debug)]
struct EmbeddingBackward;

impl Backward for EmbeddingBackward {
    fn name(&self) -> &'static str {
        "embedding"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let (Some(g), true) = (&grads[0], needs[0]) else {
            return Ok(vec![None, None]);
        };
        let (w, indices) = (&inputs[0], &inputs[1]);
        let dw = Tensor::from_op(
            &w.ctx,
            EmbeddingGrad,
            vec![indices.clone(), g.clone()],
            w.shape.clone(),
            DType::F32,
        )?;
        Ok(vec![Some(dw), None])
    }
}

impl Tensor {
    /// Embedding lookup: `self` is the weight `(V, D)`, `indices` (i32 or u32, any shape) pick
    /// its rows; the result has shape `indices.shape + [D]`.
    ///
    /// An index outside `[0, V)` (including a negative i32) gives a row of zeros: a kernel
    /// cannot raise, and checking on the host would need a readback.
    ///
    /// The gradient flows to the weight only: `dW[v] = Σ dY[n]` over the positions `n` with
    /// `indices[n] == v` (repeated indices accumulate; out-of-range ones contribute nothing).
    /// WGSL has no f32 atomics, so it is computed deterministically by owner: each workgroup
    /// owns 16 vocabulary rows × 64 columns and scans every index, adding its hits in
    /// increasing `n` (the same bits on every run). Cost: `⌈V/16⌉·⌈D/64⌉·N` index reads plus
    /// `N·D` gradient reads and `V·D` writes, so it suits vocabularies up to tens of thousands
    /// with moderate `N`; a sort-based pass would scale better for very large `V·N`.
    ///
    /// Errors with [`Error::UnsupportedDType`] unless the weight is f32 and the indices i32 or
    /// u32, and with [`Error::InvalidArgument`] unless the weight has rank 2.
    pub fn embedding(&self, indices: &Tensor) -> Result<Tensor> {
        const OP: &str = "embedding";
        self.check_dtype(OP, DType::F32)?;
        if !matches!(indices.dtype(), DType::I32 | DType::U32) {
            return Err(Error::UnsupportedDType {
                op: OP,
                dtype: indices.dtype(),
            });
        }
        let [_, dim] = self.shape[..] else {
            return Err(Error::invalid(
                OP,
                format!("weight must be (vocab, dim), got shape {:?}", self.shape),
            ));
        };
        let mut shape = indices.shape.clone();
        shape.push(dim);
        let y = Tensor::from_op(
            &self.ctx,
            Embedding,
            vec![self.clone(), indices.clone()],
            shape,
            DType::F32,
        )?;
        Ok(record1(y, &[self, indices], EmbeddingBackward))
    }
}
