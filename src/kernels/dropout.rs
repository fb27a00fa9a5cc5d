//! Placeholder: the dropout kernels (being written).
