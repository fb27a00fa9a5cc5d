//! Placeholder: filled in by the permute work.
