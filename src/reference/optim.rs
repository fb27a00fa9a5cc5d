//! Placeholder: references for the optim kernels (being written).
