//! Placeholder: the optim kernels (being written).
