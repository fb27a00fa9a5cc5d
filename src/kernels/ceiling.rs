//! The ceiling kernels (shaders/ceiling.wgsl): what the adapter can do at best, so that
//! `kiln bench` can report every case as a fraction of a roofline with two measured roofs.
//! [`crate::reference::ceiling`] is their f64 model.

use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, CeilingParams};
use crate::{DType, Tensor};

#[derive(Debug)]
struct CeilingFma {
    trips: u32,
    chains: u32,
}

impl Kernel for CeilingFma {
    fn name(&self) -> &'static str {
        "ceiling_fma"
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let g = crate::shape::numel(out);
        let params = CeilingParams {
            count: g as u32,
            trips: self.trips,
            stride: 0,
            _pad: 0,
        };
        launch(
            &registry::CEILING_FMA,
            vec![("CHAINS", self.chains)],
            &params,
            groups(g, 256),
        )
    }
}

#[derive(Debug)]
struct CeilingCopy;

/// vec4s each invocation of the copy ceiling moves.
const COPY_PER_INVOCATION: usize = 4;

impl Kernel for CeilingCopy {
    fn name(&self) -> &'static str {
        "ceiling_copy"
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        let n = crate::shape::numel(out) / 4;
        let stride = n.div_ceil(COPY_PER_INVOCATION);
        let params = CeilingParams {
            count: n as u32,
            trips: COPY_PER_INVOCATION as u32,
            stride: stride as u32,
            _pad: 0,
        };
        launch(
            &registry::CEILING_COPY,
            vec![],
            &params,
            groups(stride, 256),
        )
    }
}

/// FLOPs of one [`ceiling_fma`] run.
pub fn ceiling_fma_flops(invocations: usize, trips: u32, chains: u32) -> f64 {
    invocations as f64 * f64::from(trips) * f64::from(chains) * 4.0 * 2.0
}

/// The FMA ceiling kernel: `invocations` invocations each run `chains` (1..=8) independent vec4
/// FMA chains `a = fma(a, seed[1], seed[2])` for `trips` trips and write the sum of all eight
/// accumulators' lanes (see shaders/ceiling.wgsl; [`crate::reference::ceiling::ceiling_fma`]
/// is the f64 model). `seed` holds 4 values: start, multiplier, addend, unused.
pub fn ceiling_fma(seed: &Tensor, invocations: usize, trips: u32, chains: u32) -> Result<Tensor> {
    if seed.numel() != 4 {
        return Err(Error::shape("ceiling_fma", seed.shape(), &[4]));
    }
    if !(1..=8).contains(&chains) || invocations == 0 || invocations > u32::MAX as usize {
        return Err(Error::invalid(
            "ceiling_fma",
            format!("chains {chains} (1..=8), invocations {invocations} (1..2^32)"),
        ));
    }
    Tensor::from_op(
        seed.context(),
        CeilingFma { trips, chains },
        vec![seed.clone()],
        vec![invocations],
        DType::F32,
    )
}

/// The copy ceiling kernel: a copy of `x` (its element count a multiple of 4) made with vec4
/// loads and stores, each invocation moving 4 vec4s a grid apart.
pub fn ceiling_copy(x: &Tensor) -> Result<Tensor> {
    x.check_dtype("ceiling_copy", DType::F32)?;
    let n = x.numel();
    if !n.is_multiple_of(4) || n / 4 > u32::MAX as usize {
        return Err(Error::invalid(
            "ceiling_copy",
            format!("{n} elements (needs a multiple of 4, under 2^34)"),
        ));
    }
    Tensor::from_op(
        x.context(),
        CeilingCopy,
        vec![x.clone()],
        x.shape().to_vec(),
        DType::F32,
    )
}
