//! Plain CPU versions of every kernel, accumulating in f64. Tests compare the GPU against
//! these; they favour clarity over speed.

pub mod activation;
pub mod attention;
pub mod ceiling;
pub mod conv;
pub mod cross_entropy;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod indexing;
pub mod matmul;
pub mod norm;
pub mod optim;
pub mod permute;
pub mod pool;
pub mod random;
pub mod recurrent;
pub mod reduce;
pub mod softmax;
