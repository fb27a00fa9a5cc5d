//! Placeholder: filled in by the reduce work.
