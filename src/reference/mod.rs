//! Plain CPU versions of every kernel, accumulating in f64. Tests compare the GPU against
//! these; they favour clarity over speed.

pub mod elementwise;
pub mod matmul;
pub mod permute;
pub mod random;
pub mod reduce;
