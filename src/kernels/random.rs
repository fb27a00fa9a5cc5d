//! Placeholder: the random kernel (being written).
