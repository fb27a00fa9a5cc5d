//! Placeholder: references for the softmax kernels (being written).
