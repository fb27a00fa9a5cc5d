//! Placeholder: the softmax kernels (being written).
