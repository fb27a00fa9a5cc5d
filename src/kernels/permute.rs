//! Placeholder: the permute kernel (being written).
