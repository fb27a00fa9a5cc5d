//! Placeholder: the matmul kernel (being written).
