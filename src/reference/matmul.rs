//! Placeholder: filled in by the matmul work.
