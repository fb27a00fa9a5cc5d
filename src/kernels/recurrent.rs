//! Placeholder: the recurrent kernels (being written).
