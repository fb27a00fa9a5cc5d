//! `where(cond, a, b)` with NumPy broadcasting (shaders/where_select.wgsl; `where` is a WGSL
//! keyword). The gradient flows to `a` where `cond` holds and to `b` elsewhere.

use crate::autograd::{record1, sum_to_shape, Backward};
use crate::error::Result;
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, slots8, WhereParams};
use crate::shape::{broadcast_shape, broadcast_strides, numel};
use crate::{DType, Tensor};

/// Inputs: cond, a, b (any shapes broadcasting to the output's). Output: the broadcast shape.
#[derive(Debug)]
struct WhereSelect;

impl Kernel for WhereSelect {
    fn name(&self) -> &'static str {
        "where"
    }

    fn launch(&self, inputs: &[&[usize]], out: &[usize]) -> Launch {
        let n = numel(out);
        let p = WhereParams {
            numel: n as u32,
            rank: out.len() as u32,
            _pad0: 0,
            _pad1: 0,
            shape: slots8(out),
            c_strides: slots8(&broadcast_strides(inputs[0], out)),
            a_strides: slots8(&broadcast_strides(inputs[1], out)),
            b_strides: slots8(&broadcast_strides(inputs[2], out)),
        };
        launch(&registry::WHERE_SELECT, vec![], &p, groups(n, 256))
    }
}

/// d a = where(cond, g, 0) and d b = where(cond, 0, g), each summed to its operand's shape.
#[derive(Debug)]
struct WhereBackward;

impl Backward for WhereBackward {
    fn name(&self) -> &'static str {
        "where"
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let Some(g) = &grads[0] else {
            return Ok(vec![None, None, None]);
        };
        let (cond, a, b) = (&inputs[0], &inputs[1], &inputs[2]);
        let zero = Tensor::zeros(&g.ctx, &[])?;
        let da = match needs[1] {
            true => Some(sum_to_shape(&cond.where_select(g, &zero)?, &a.shape)?),
            false => None,
        };
        let db = match needs[2] {
            true => Some(sum_to_shape(&cond.where_select(&zero, g)?, &b.shape)?),
            false => None,
        };
        Ok(vec![None, da, db])
    }
}

impl Tensor {
    /// `where(self, a, b)`: `a` where `self` (the condition, an f32 mask such as
    /// [`Tensor::gt`] returns) is nonzero, `b` elsewhere; all three broadcast to a common shape
    /// (NumPy rules), like ONNX Where. Gradients flow to `a` and `b`, none to the condition.
    pub fn where_select(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.check_dtype("where", DType::F32)?;
        a.check_dtype("where", DType::F32)?;
        b.check_dtype("where", DType::F32)?;
        let ab = broadcast_shape("where", &a.shape, &b.shape)?;
        let out = broadcast_shape("where", &self.shape, &ab)?;
        let y = Tensor::from_op(
            &self.ctx,
            WhereSelect,
            vec![self.clone(), a.clone(), b.clone()],
            out,
            DType::F32,
        )?;
        Ok(record1(y, &[&self.detach(), a, b], WhereBackward))
    }
}
