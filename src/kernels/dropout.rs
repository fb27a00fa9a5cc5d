//! Dropout (shaders/dropout.wgsl) with a counter-based mask that is a pure function of the
//! seed and the element index, so the backward pass recomputes it instead of saving it.

use crate::autograd::{record1, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{launch, DropoutParams, DROPOUT};
use crate::shape::numel;
use crate::{DType, Tensor};

/// Elements one workgroup covers: 256 invocations, one 4-word Philox block each.
const ELEMENTS_PER_GROUP: usize = 256 * 4;

#[derive(Clone, Copy, Debug)]
struct Dropout {
    seed: u64,
    /// Keep iff the top 24 bits of the element's Philox word are >= this.
    threshold: u32,
    scale: f32,
}

impl Dropout {
    fn new(p: f32, seed: u64) -> Self {
        // u = k·2^-24 >= p  <=>  k >= ceil(p·2^24) (exact in f64; p < 1 keeps it < 2^24).
        let threshold = (f64::from(p) * 16_777_216.0).ceil() as u32;
        Dropout {
            seed,
            threshold,
            scale: (1.0 / (1.0 - f64::from(p))) as f32,
        }
    }
}

impl Kernel for Dropout {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let n = numel(out);
        let params = DropoutParams {
            numel: n as u32,
            blocks: n.div_ceil(4) as u32,
            key_lo: self.seed as u32,
            key_hi: (self.seed >> 32) as u32,
            stream: crate::reference::random::STREAM,
            threshold: self.threshold,
            scale: self.scale,
            _pad: 0,
        };
        launch(&DROPOUT, vec![], &params, groups(n, ELEMENTS_PER_GROUP))
    }
}

/// dx = dy · mask · scale: the forward kernel applied to the gradient, same seed.
#[derive(Debug)]
struct DropoutBackward(Dropout);

impl Backward for DropoutBackward {
    fn name(&self) -> &'static str {
        "dropout"
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
            self.0,
            vec![g.reshape(&x.shape)?],
            x.shape.clone(),
            DType::F32,
        )?;
        Ok(vec![Some(dx)])
    }
}

impl Tensor {
    /// Dropout with drop probability `p`.
    ///
    /// When `training` is false, or `p == 0`, returns the input unchanged (a view: no kernel,
    /// gradients pass through). In training, each element is kept with probability `1 − p` and
    /// kept elements are scaled by `1 / (1 − p)`; dropped ones are exactly 0 (even where the
    /// input is inf or NaN).
    ///
    /// The mask is a pure function of `(seed, element index)`: element `i` is kept iff
    /// `Tensor::rand(ctx, shape, seed)[i] >= p` (the top 24 bits of Philox4x32-10 word `i`, see
    /// [`Tensor::rand`]), whatever the shape or whatever else runs. The backward pass applies
    /// the same mask and scale to the gradient, recomputed from the seed (nothing is saved).
    /// Use a fresh seed per step and per layer.
    ///
    /// Errors with [`Error::InvalidArgument`] when `p` is not in [0, 1) (checked in inference
    /// too), and with [`Error::UnsupportedDType`] for non-f32 tensors.
    pub fn dropout(&self, p: f32, training: bool, seed: u64) -> Result<Tensor> {
        const OP: &str = "dropout";
        self.check_dtype(OP, DType::F32)?;
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid(
                OP,
                format!("drop probability p = {p} must be in [0, 1)"),
            ));
        }
        if !training || p == 0.0 {
            return Ok(self.clone());
        }
        let kernel = Dropout::new(p, seed);
        let y = Tensor::from_op(
            &self.ctx,
            kernel,
            vec![self.clone()],
            self.shape.clone(),
            DType::F32,
        )?;
        Ok(record1(y, &[self], DropoutBackward(kernel)))
    }
}
