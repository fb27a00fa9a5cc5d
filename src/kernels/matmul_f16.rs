//! Half precision: casts between f32 and f16 tensors, and f16 matrix products with f32
//! accumulation (shaders/matmul_f16.wgsl, shaders/matmul_coop.wgsl).
//!
//! Every entry point needs the adapter's `SHADER_F16` feature and says so in its error when the
//! adapter lacks it (OpenGL adapters never have it). The product has two kernels:
//! - [`F16Kernel::Tiled`]: shared-memory tiles, f16 loads, f32 fused multiply-adds; runs on any
//!   adapter with `SHADER_F16` (lavapipe included, which is how it is tested).
//! - [`F16Kernel::Cooperative`]: wgpu's experimental cooperative matrices (tensor cores on
//!   NVIDIA). Needs `EXPERIMENTAL_COOPERATIVE_MATRIX` (opened only with
//!   `KILN_EXPERIMENTAL_COOP=1`, see [`crate::ContextOptions`]), a 16x16x16 (NVIDIA) or 8x8x8
//!   (lavapipe) f16 x f16 -> f32 configuration, and a fixed subgroup size.
//!
//! The products are for inference and benchmarks: they record no gradient.

use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, MatmulCoopParams, MatmulF16Params};
use crate::shape::numel;
use crate::{Context, DType, Tensor};

/// Rows and columns of C one workgroup computes in the tiled kernel and in the 16x16x16
/// cooperative kernel (= `TILE` in both shaders).
const TILE: usize = 64;
/// The same for the 8x8x8 cooperative kernel (= `TILE8` in shaders/matmul_coop.wgsl).
const TILE8: usize = 32;

/// Which kernel [`Tensor::matmul_f16_with`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum F16Kernel {
    /// Cooperative matrices where [`cooperative_support`] allows them, else tiled.
    #[default]
    Auto,
    /// The shared-memory tiled kernel (needs `SHADER_F16`).
    Tiled,
    /// The cooperative-matrix kernel (errors where [`cooperative_support`] refuses).
    Cooperative,
}

fn require_f16(ctx: &Context, op: &'static str) -> Result<()> {
    if ctx.features().contains(wgpu::Features::SHADER_F16) {
        return Ok(());
    }
    let info = ctx.adapter_info();
    Err(Error::invalid(
        op,
        format!(
            "needs the SHADER_F16 feature, which adapter {} ({:?}) does not offer",
            info.name, info.backend
        ),
    ))
}

/// How the cooperative-matrix kernel would run on a context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cooperative {
    /// Invocations per workgroup: the adapter's one subgroup size.
    pub subgroup: u32,
    /// Side of the cooperative matrices: 16 (16x16x16, preferred) or 8 (8x8x8).
    pub size: u32,
}

/// Whether the context can run the cooperative-matrix kernel, and how; or an error naming the
/// first missing piece (`SHADER_F16`, the experimental feature, a 16x16x16 or 8x8x8
/// f16 x f16 -> f32 configuration, one fixed subgroup size: the kernel's workgroup is exactly
/// one subgroup).
pub fn cooperative_support(ctx: &Context) -> Result<Cooperative> {
    const OP: &str = "matmul_f16 (cooperative)";
    require_f16(ctx, OP)?;
    let info = ctx.adapter_info();
    let features = ctx.features();
    if !features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
        let offered = ctx
            .adapter()
            .features()
            .contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);
        return Err(Error::invalid(
            OP,
            if offered {
                format!(
                    "needs EXPERIMENTAL_COOPERATIVE_MATRIX: adapter {} offers it, but the \
                     context was opened without it (set KILN_EXPERIMENTAL_COOP=1)",
                    info.name
                )
            } else {
                format!(
                    "needs the EXPERIMENTAL_COOPERATIVE_MATRIX feature, which adapter {} ({:?}) \
                     does not offer",
                    info.name, info.backend
                )
            },
        ));
    }
    let configs = ctx.adapter().cooperative_matrix_properties();
    let has = |size: u32| {
        configs.iter().any(|c| {
            c.m_size == size
                && c.n_size == size
                && c.k_size == size
                && c.ab_type == wgpu::CooperativeScalarType::F16
                && c.cr_type == wgpu::CooperativeScalarType::F32
        })
    };
    let Some(size) = [16, 8].into_iter().find(|&s| has(s)) else {
        return Err(Error::invalid(
            OP,
            format!(
                "needs a 16x16x16 or 8x8x8 f16 x f16 -> f32 cooperative-matrix configuration; \
                 adapter {} offers {configs:?}",
                info.name
            ),
        ));
    };
    if info.subgroup_min_size != info.subgroup_max_size || info.subgroup_min_size == 0 {
        return Err(Error::invalid(
            OP,
            format!(
                "needs one fixed subgroup size; adapter {} has {}..={}",
                info.name, info.subgroup_min_size, info.subgroup_max_size
            ),
        ));
    }
    let sg = info.subgroup_min_size;
    if sg > ctx.limits().max_compute_invocations_per_workgroup {
        return Err(Error::invalid(
            OP,
            format!("subgroup size {sg} exceeds the workgroup size limit"),
        ));
    }
    Ok(Cooperative { subgroup: sg, size })
}

#[derive(Debug)]
struct Cast {
    to: DType,
}

impl Kernel for Cast {
    fn name(&self) -> &'static str {
        if self.to == DType::F16 {
            "to_f16"
        } else {
            "to_f32"
        }
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let n = numel(out);
        let spec = if self.to == DType::F16 {
            &registry::TO_F16
        } else {
            &registry::TO_F32
        };
        let params = MatmulF16Params {
            count: n as u32,
            ..Default::default()
        };
        launch(spec, Vec::new(), &params, groups(n, 256))
    }
}

#[derive(Debug)]
struct MatmulF16 {
    m: usize,
    n: usize,
    k: usize,
    batch: usize,
    /// `Some(..)`: the cooperative kernel.
    coop: Option<Cooperative>,
}

impl Kernel for MatmulF16 {
    fn name(&self) -> &'static str {
        "matmul_f16"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let tile = match self.coop {
            Some(Cooperative { size: 8, .. }) => TILE8,
            _ => TILE,
        };
        let tiles_m = self.m.div_ceil(tile);
        let tiles_n = self.n.div_ceil(tile);
        let wgs = (self.batch * tiles_m * tiles_n) as u64;
        match self.coop {
            Some(Cooperative { subgroup, size }) => {
                let spec = if size == 8 {
                    &registry::MATMUL_COOP8
                } else {
                    &registry::MATMUL_COOP
                };
                let params = MatmulCoopParams {
                    m: self.m as u32,
                    n: self.n as u32,
                    k: self.k as u32,
                    batch: self.batch as u32,
                    tiles_m: tiles_m as u32,
                    tiles_n: tiles_n as u32,
                    ..Default::default()
                };
                launch(spec, vec![("SG", subgroup)], &params, wgs)
            }
            None => {
                let params = MatmulF16Params {
                    m: self.m as u32,
                    n: self.n as u32,
                    k: self.k as u32,
                    batch: self.batch as u32,
                    tiles_m: tiles_m as u32,
                    tiles_n: tiles_n as u32,
                    ..Default::default()
                };
                launch(&registry::MATMUL_F16, Vec::new(), &params, wgs)
            }
        }
    }
}

impl Tensor {
    /// Converts an f32 tensor to f16 (round to nearest even; beyond ±65504 becomes ±inf).
    /// Needs the adapter's `SHADER_F16` feature.
    pub fn to_f16(&self) -> Result<Tensor> {
        const OP: &str = "to_f16";
        self.check_dtype(OP, DType::F32)?;
        require_f16(&self.ctx, OP)?;
        Tensor::from_op(
            &self.ctx,
            Cast { to: DType::F16 },
            vec![self.clone()],
            self.shape.clone(),
            DType::F16,
        )
    }

    /// Converts an f16 tensor to f32 (exact). Needs the adapter's `SHADER_F16` feature.
    pub fn to_f32(&self) -> Result<Tensor> {
        const OP: &str = "to_f32";
        self.check_dtype(OP, DType::F16)?;
        require_f16(&self.ctx, OP)?;
        Tensor::from_op(
            &self.ctx,
            Cast { to: DType::F32 },
            vec![self.clone()],
            self.shape.clone(),
            DType::F32,
        )
    }

    /// Matrix product of f16 tensors with f32 accumulation and an f32 result:
    /// `[M, K] @ [K, N] -> [M, N]`, or batched `[B, M, K] @ [B, K, N] -> [B, M, N]` (equal
    /// batch, no broadcasting). Runs on cooperative matrices where the context allows them
    /// ([`cooperative_support`]), else on the tiled kernel. Records no gradient.
    ///
    /// Errors: operands that are not f16 rank-2 or rank-3 tensors with matching inner and batch
    /// dimensions; an adapter without `SHADER_F16`.
    pub fn matmul_f16(&self, other: &Tensor) -> Result<Tensor> {
        self.matmul_f16_with(other, F16Kernel::Auto)
    }

    /// [`Tensor::matmul_f16`] on a chosen kernel. [`F16Kernel::Cooperative`] errors, naming the
    /// missing feature, where the context cannot run it.
    pub fn matmul_f16_with(&self, other: &Tensor, kernel: F16Kernel) -> Result<Tensor> {
        const OP: &str = "matmul_f16";
        self.check_dtype(OP, DType::F16)?;
        other.check_dtype(OP, DType::F16)?;
        require_f16(&self.ctx, OP)?;
        let mismatch = || Error::shape(OP, &self.shape, &other.shape);
        let (batch, m, k, kb, n) = match (self.shape.as_slice(), other.shape.as_slice()) {
            ([m, k], [kb, n]) => (1, *m, *k, *kb, *n),
            ([b, m, k], [bb, kb, n]) if b == bb => (*b, *m, *k, *kb, *n),
            _ => return Err(mismatch()),
        };
        if k != kb {
            return Err(mismatch());
        }
        let coop = match kernel {
            F16Kernel::Tiled => None,
            F16Kernel::Cooperative => Some(cooperative_support(&self.ctx)?),
            F16Kernel::Auto => cooperative_support(&self.ctx).ok(),
        };
        let mut shape = if self.rank() == 3 {
            vec![batch]
        } else {
            vec![]
        };
        shape.extend([m, n]);
        Tensor::from_op(
            &self.ctx,
            MatmulF16 {
                m,
                n,
                k,
                batch,
                coop,
            },
            vec![self.clone(), other.clone()],
            shape,
            DType::F32,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_sizes_match_the_shaders() {
        for name in ["matmul_f16", "matmul_coop"] {
            let src = crate::shaders::shader_source(name).unwrap_or_default();
            assert!(
                src.contains(&format!("const TILE: u32 = {TILE}u;")),
                "{name}"
            );
        }
        let src = crate::shaders::shader_source("matmul_coop").unwrap_or_default();
        assert!(src.contains(&format!("const TILE8: u32 = {TILE8}u;")));
    }
}
