//! The f64 model of the FMA ceiling kernel (`kernels::ceiling`); the copy ceiling is a copy.

/// One sum per invocation of `ceiling_fma(seed, invocations, trips, chains)`.
pub fn ceiling_fma(seed: &[f32], invocations: usize, trips: u32, chains: u32) -> Vec<f64> {
    let (m, c) = (f64::from(seed[1]), f64::from(seed[2]));
    (0..invocations)
        .map(|g| {
            let s = f64::from(seed[0] + (g & 1023) as f32 * 1e-4);
            let mut total = 0.0;
            for k in 0..8u32 {
                for lane in 0..4 {
                    let mut a = s + 0.01 * f64::from(lane) + 0.1 * f64::from(k);
                    if k < chains {
                        for _ in 0..trips {
                            a = a * m + c;
                        }
                    }
                    total += a;
                }
            }
            total
        })
        .collect()
}
