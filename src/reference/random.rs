//! Reference for shaders/random.wgsl: Philox4x32-10 in plain Rust (64-bit multiplies) and the
//! uniform and normal generators built on it, producing f64 values from the same bits the GPU
//! uses.
//!
//! Element `i` of a tensor made with seed `s` comes from Philox block `i / 4`, output word
//! `i % 4`, with key `[s as u32, (s >> 32) as u32]` and counter
//! `[block as u32, (block >> 32) as u32, stream, 0]` (`stream` is 0 for every public op).

/// First Philox multiplier (Salmon et al. 2011).
pub const PHILOX_M0: u32 = 0xD251_1F53;
/// Second Philox multiplier.
pub const PHILOX_M1: u32 = 0xCD9E_8D57;
/// Weyl increment of key word 0 between rounds (golden ratio).
pub const PHILOX_W0: u32 = 0x9E37_79B9;
/// Weyl increment of key word 1 between rounds (sqrt(3) - 1).
pub const PHILOX_W1: u32 = 0xBB67_AE85;

/// The stream word the public ops put in counter word 2.
pub const STREAM: u32 = 0;

/// 2^-24: the spacing of the 24-bit uniform grid.
const INV_2_24: f64 = 1.0 / 16_777_216.0;

/// The high and low 32-bit words of `a * b`.
pub fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with 10 rounds: the 128-bit block for `counter` under `key`.
///
/// Matches the Random123 `philox4x32_10` known-answer vectors, e.g. counter 0 and key 0 give
/// `[0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]`.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(PHILOX_W0);
            k[1] = k[1].wrapping_add(PHILOX_W1);
        }
        let (hi0, lo0) = mulhilo(PHILOX_M0, c[0]);
        let (hi1, lo1) = mulhilo(PHILOX_M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The Philox key for a 64-bit seed: low word first.
pub fn seed_key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// The block of four words that elements `4 * block .. 4 * block + 4` are made from.
pub fn block(seed: u64, block: u64) -> [u32; 4] {
    philox4x32_10(
        [block as u32, (block >> 32) as u32, STREAM, 0],
        seed_key(seed),
    )
}

/// The first `n` raw 32-bit words of the stream for `seed` (word `i` feeds element `i`).
pub fn bits(seed: u64, n: usize) -> Vec<u32> {
    let blocks = n.div_ceil(4) as u64;
    let mut out: Vec<u32> = (0..blocks).flat_map(|b| block(seed, b)).collect();
    out.truncate(n);
    out
}

/// A word as a uniform value in [0, 1): its top 24 bits times 2^-24 (exact in f32).
pub fn unit(x: u32) -> f64 {
    f64::from(x >> 8) * INV_2_24
}

/// A word as a uniform value in (0, 1]: (top 24 bits + 1) times 2^-24, so its log is finite.
pub fn unit_open0(x: u32) -> f64 {
    (f64::from(x >> 8) + 1.0) * INV_2_24
}

/// `n` values uniform in [lo, hi) for `seed`: `lo + (hi - lo) * u` (what `Tensor::rand` and
/// `Tensor::rand_uniform` compute, in f64).
pub fn uniform(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    bits(seed, n)
        .into_iter()
        .map(|x| lo + (hi - lo) * unit(x))
        .collect()
}

/// The two standard normals Box-Muller makes from a pair of words:
/// `r = sqrt(-2 ln u1)` with `u1 = unit_open0(x1)`, angle `2 pi unit(x2)`; returns
/// `(r cos, r sin)`.
pub fn box_muller(x1: u32, x2: u32) -> (f64, f64) {
    let r = (-2.0 * unit_open0(x1).ln()).sqrt();
    let theta = 2.0 * std::f64::consts::PI * unit(x2);
    (r * theta.cos(), r * theta.sin())
}

/// `n` values normal with `mean` and `std` for `seed` (what `Tensor::randn` computes, in f64).
/// Each block's words (x0, x1, x2, x3) give elements (z0, z1) from the pair (x0, x1) and
/// (z2, z3) from (x2, x3), each pair as (r cos, r sin).
pub fn normal(seed: u64, n: usize, mean: f64, std: f64) -> Vec<f64> {
    let blocks = n.div_ceil(4) as u64;
    let mut out = Vec::with_capacity(n + 3);
    for b in 0..blocks {
        let x = block(seed, b);
        let (z0, z1) = box_muller(x[0], x[1]);
        let (z2, z3) = box_muller(x[2], x[3]);
        out.extend([z0, z1, z2, z3].map(|z| mean + std * z));
    }
    out.truncate(n);
    out
}
