//! The tensor handle: a shape, a dtype, and a node in the recorded graph.

use std::sync::{Arc, Mutex};

use crate::context::BufKind;
use crate::context::{lock, Context};
use crate::error::{Error, Result};
use crate::executor::{self, GpuTimer};
use crate::graph::{Kernel, Node, NodeState, OutSpec, Storage, Value};
use crate::shape::{self, numel};
use crate::{DType, Element};

/// An n-dimensional array that lives on the GPU.
///
/// Ops on tensors are recorded, not run: they return new tensors at once and the work happens
/// when a result is realized ([`Tensor::realize`], [`Context::realize`]) or read back
/// ([`Tensor::to_vec`]). Clones are cheap: they share the node and its GPU buffer.
#[derive(Clone)]
pub struct Tensor {
    pub(crate) node: Arc<Node>,
    /// Which output of the node this tensor is.
    pub(crate) out: usize,
    pub(crate) shape: Vec<usize>,
    pub(crate) ctx: Context,
    /// Autograd record: `None` unless gradients flow through this tensor.
    pub(crate) grad: Option<Arc<crate::autograd::Meta>>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("shape", &self.shape)
            .field("dtype", &self.dtype())
            .field("realized", &self.is_realized())
            .field("requires_grad", &self.requires_grad())
            .finish()
    }
}

impl Tensor {
    /// The graph's handle to this tensor's data: its node, output and view shape.
    pub(crate) fn value(&self) -> Value {
        Value {
            node: self.node.clone(),
            out: self.out,
            shape: self.shape.clone(),
        }
    }

    /// Uploads host data as a tensor of `shape`.
    ///
    /// ```no_run
    /// # let ctx = kiln::Context::new()?;
    /// let t = kiln::Tensor::from_slice(&ctx, &[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// # Ok::<(), kiln::Error>(())
    /// ```
    pub fn from_slice<T: Element>(ctx: &Context, data: &[T], shape: &[usize]) -> Result<Tensor> {
        if data.len() != numel(shape) {
            return Err(Error::invalid(
                "Tensor::from_slice",
                format!(
                    "{} values cannot fill shape {shape:?} ({} elements)",
                    data.len(),
                    numel(shape)
                ),
            ));
        }
        shape::check_rank("Tensor::from_slice", shape)?;
        let bytes: &[u8] = bytemuck::cast_slice(data);
        check_size(ctx, "Tensor::from_slice", bytes.len() as u64)?;
        let padded = (bytes.len() as u64).div_ceil(4) * 4;
        let buf = ctx.acquire(BufKind::Storage, padded.max(4));
        if !bytes.is_empty() {
            if bytes.len() as u64 == padded {
                ctx.queue().write_buffer(&buf.buffer, 0, bytes);
            } else {
                let mut v = bytes.to_vec();
                v.resize(padded as usize, 0);
                ctx.queue().write_buffer(&buf.buffer, 0, &v);
            }
        }
        let storage = Storage::new(buf, Arc::downgrade(&ctx.inner));
        let spec = OutSpec {
            shape: shape.to_vec(),
            dtype: T::DTYPE,
        };
        Ok(Tensor::from_node(
            ctx,
            vec![spec],
            NodeState::Realized(vec![Arc::new(storage)]),
        )
        .remove(0))
    }

    /// Records an op producing a tensor of `shape` from `inputs`.
    pub(crate) fn from_op(
        ctx: &Context,
        kernel: impl Kernel + 'static,
        inputs: Vec<Tensor>,
        shape: Vec<usize>,
        dtype: DType,
    ) -> Result<Tensor> {
        let mut v = Tensor::from_op_multi(ctx, kernel, inputs, vec![(shape, dtype)])?;
        Ok(v.remove(0))
    }

    /// Records an op with several outputs; returns one tensor per output. The kernel binds its
    /// outputs after its inputs, in this order.
    pub(crate) fn from_op_multi(
        ctx: &Context,
        kernel: impl Kernel + 'static,
        inputs: Vec<Tensor>,
        outs: Vec<(Vec<usize>, DType)>,
    ) -> Result<Vec<Tensor>> {
        let mut specs = Vec::with_capacity(outs.len());
        for (shape, dtype) in outs {
            shape::check_rank(kernel.name(), &shape)?;
            check_size(ctx, kernel.name(), (numel(&shape) * dtype.size()) as u64)?;
            specs.push(OutSpec { shape, dtype });
        }
        if specs.is_empty() {
            return Err(Error::invalid(
                kernel.name(),
                "an op needs at least one output",
            ));
        }
        for t in &inputs {
            if !Arc::ptr_eq(&t.ctx.inner, &ctx.inner) {
                return Err(Error::invalid(
                    kernel.name(),
                    "inputs live on different contexts",
                ));
            }
        }
        // The executor's graph holds plain data handles; autograd records live beside it.
        let inputs = inputs.iter().map(Tensor::value).collect();
        Ok(Tensor::from_node(
            ctx,
            specs,
            NodeState::Pending {
                kernel: Arc::new(kernel),
                inputs,
            },
        ))
    }

    fn from_node(ctx: &Context, outs: Vec<OutSpec>, state: NodeState) -> Vec<Tensor> {
        let shapes: Vec<Vec<usize>> = outs.iter().map(|o| o.shape.clone()).collect();
        let node = Arc::new(Node {
            id: ctx.next_node_id(),
            outs,
            state: Mutex::new(state),
        });
        shapes
            .into_iter()
            .enumerate()
            .map(|(out, shape)| Tensor {
                node: node.clone(),
                out,
                shape,
                ctx: ctx.clone(),
                grad: None,
            })
            .collect()
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.node.outs[self.out].dtype
    }

    /// The context this tensor lives on.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Whether the data has been computed (or uploaded).
    pub fn is_realized(&self) -> bool {
        matches!(*lock(&self.node.state), NodeState::Realized(_))
    }

    /// The same data with another shape of the same element count. A view: no copy, no kernel.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape("reshape", &self.shape, shape));
        }
        shape::check_rank("reshape", shape)?;
        let view = Tensor {
            node: self.node.clone(),
            out: self.out,
            shape: shape.to_vec(),
            ctx: self.ctx.clone(),
            grad: None,
        };
        Ok(crate::autograd::record1(
            view,
            &[self],
            crate::autograd::ReshapeBackward,
        ))
    }

    /// Flattens to one dimension (a view).
    pub fn flatten(&self) -> Result<Tensor> {
        self.reshape(&[self.numel()])
    }

    /// Computes this tensor (and everything pending it depends on) in one submission.
    /// Returns without waiting for the GPU.
    pub fn realize(&self) -> Result<()> {
        self.ctx.realize(&[self])
    }

    pub(crate) fn storage(&self) -> Result<Arc<Storage>> {
        self.value().storage()
    }

    pub(crate) fn check_dtype(&self, op: &'static str, dtype: DType) -> Result<()> {
        if self.dtype() != dtype {
            return Err(Error::UnsupportedDType {
                op,
                dtype: self.dtype(),
            });
        }
        Ok(())
    }

    /// Realizes the tensor and copies it to the host. Blocks until the GPU is done.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        pollster::block_on(self.to_vec_async())
    }

    /// Reads a one-element tensor. Blocks until the GPU is done.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn item<T: Element>(&self) -> Result<T> {
        let v = self.to_vec::<T>()?;
        match v.as_slice() {
            [x] => Ok(*x),
            _ => Err(Error::invalid(
                "item",
                format!(
                    "tensor of shape {:?} has {} elements, not 1",
                    self.shape,
                    v.len()
                ),
            )),
        }
    }

    /// Realizes the tensor and copies it to the host, without blocking a thread: on the web the
    /// browser resolves the future; natively it waits on the device.
    pub async fn to_vec_async<T: Element>(&self) -> Result<Vec<T>> {
        if self.dtype() != T::DTYPE {
            return Err(Error::invalid(
                "to_vec",
                format!("tensor has dtype {}, asked for {}", self.dtype(), T::DTYPE),
            ));
        }
        self.realize()?;
        let storage = self.storage()?;
        let bytes = (self.numel() * self.dtype().size()) as u64;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let padded = bytes.div_ceil(4) * 4;
        let ctx = &self.ctx;
        let staging = ctx.acquire(BufKind::Staging, padded);
        let mut enc = ctx
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("kiln readback"),
            });
        enc.copy_buffer_to_buffer(&storage.buf.buffer, 0, &staging.buffer, 0, padded);
        ctx.queue().submit([enc.finish()]);
        drop(storage);
        let (tx, rx) = futures::channel::oneshot::channel();
        staging
            .buffer
            .slice(..padded)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        #[cfg(not(target_arch = "wasm32"))]
        ctx.poll_wait()?;
        let mapped = rx
            .await
            .map_err(|_| Error::Readback("the map callback was dropped".into()))
            .and_then(|r| r.map_err(|e| Error::Readback(e.to_string())));
        if let Err(e) = mapped {
            ctx.release(staging);
            return Err(e);
        }
        let out = match staging.buffer.slice(..padded).get_mapped_range() {
            Ok(view) => {
                let mut out = vec![T::zeroed(); self.numel()];
                bytemuck::cast_slice_mut::<T, u8>(&mut out)
                    .copy_from_slice(&view[..bytes as usize]);
                Ok(out)
            }
            Err(e) => Err(Error::Readback(e.to_string())),
        };
        staging.buffer.unmap();
        ctx.release(staging);
        ctx.take_uncaptured("readback")?;
        out
    }
}

/// Refuses a tensor whose buffer would pass the device's storage-binding or buffer-size limit.
pub(crate) fn check_size(ctx: &Context, op: &'static str, bytes: u64) -> Result<()> {
    let l = ctx.limits();
    let (limit, name) = if l.max_storage_buffer_binding_size <= l.max_buffer_size {
        (
            l.max_storage_buffer_binding_size,
            "max_storage_buffer_binding_size",
        )
    } else {
        (l.max_buffer_size, "max_buffer_size")
    };
    if bytes > limit {
        return Err(Error::LimitExceeded {
            op,
            what: "a tensor buffer".into(),
            needed: bytes,
            limit_name: name,
            limit,
        });
    }
    Ok(())
}

/// Realizing tensors: the executor works on the graph's plain data, so the context's entry
/// points live here, with the tensors they take.
impl Context {
    /// Checks that every target lives on this context; returns their graph handles.
    fn targets(&self, targets: &[&Tensor]) -> Result<Vec<Value>> {
        targets
            .iter()
            .map(|t| {
                if Arc::ptr_eq(&t.ctx.inner, &self.inner) {
                    Ok(t.value())
                } else {
                    Err(Error::invalid(
                        "realize",
                        "tensor belongs to another context",
                    ))
                }
            })
            .collect()
    }

    /// Computes every pending node the targets depend on, in one submission. Returns once the
    /// work is submitted, without waiting for the GPU. With several targets, the first
    /// target's work is ordered first.
    pub fn realize(&self, targets: &[&Tensor]) -> Result<()> {
        executor::realize(self, &self.targets(targets)?)
    }

    /// [`Context::realize`], with GPU timestamps written around the work into `timer`.
    pub fn realize_timed(&self, targets: &[&Tensor], timer: &GpuTimer) -> Result<()> {
        executor::realize_timed(self, &self.targets(targets)?, timer)
    }

    /// [`Context::realize`] with every dispatch in a compute pass of its own between two GPU
    /// timestamps, and returns each dispatch's kernel and GPU time, in order (a fused group is
    /// named `fused[<ops>]`). Needs timestamp queries (an [`Error::InvalidArgument`] naming
    /// them otherwise, before anything runs); blocks until the GPU is done. At most
    /// [`executor::PROFILE_MAX_DISPATCHES`] dispatches are timed; the rest run untimed.
    /// Splitting passes adds a little time per dispatch, so the sum can exceed a
    /// [`Context::realize_timed`] figure slightly.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn realize_profiled(&self, targets: &[&Tensor]) -> Result<Vec<executor::DispatchTime>> {
        executor::realize_profiled(self, &self.targets(targets)?)
    }
}
