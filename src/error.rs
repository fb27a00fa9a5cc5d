//! One error type for the whole crate.

use std::fmt;

/// The crate's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A shape, printed the way users write it: `[2, 3, 4]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ShapeDisplay(pub Vec<usize>);

impl fmt::Debug for ShapeDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for ShapeDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Everything that can go wrong in kiln. Messages are lower case and name the op involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter could be opened.
    #[error("no GPU adapter found (tried: {tried}). {hint}")]
    NoAdapter {
        /// What was tried: backends and the adapters that were seen.
        tried: String,
        /// How to get an adapter.
        hint: String,
    },
    /// The adapter refused to create a device.
    #[error("could not open a device on adapter {adapter}: {reason}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// What wgpu said.
        reason: String,
    },
    /// Two shapes that must agree do not.
    #[error("shape mismatch in {op}, lhs: {lhs}, rhs: {rhs}")]
    ShapeMismatch {
        /// The op that was called.
        op: &'static str,
        /// Left (first) operand's shape.
        lhs: ShapeDisplay,
        /// Right (second) operand's shape.
        rhs: ShapeDisplay,
    },
    /// An argument is out of range or inconsistent.
    #[error("invalid argument to {op}: {reason}")]
    InvalidArgument {
        /// The op that was called.
        op: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The op does not support this element type.
    #[error("{op} does not support dtype {dtype}")]
    UnsupportedDType {
        /// The op that was called.
        op: &'static str,
        /// The dtype that was passed.
        dtype: crate::DType,
    },
    /// A tensor or a dispatch is larger than a device limit allows.
    #[error("{op}: {what} needs {needed}, over the device limit {limit_name} = {limit}")]
    LimitExceeded {
        /// The op that was called.
        op: &'static str,
        /// What is too large.
        what: String,
        /// How much is needed.
        needed: u64,
        /// The limit's name, as wgpu spells it.
        limit_name: &'static str,
        /// The limit's value on this device.
        limit: u64,
    },
    /// A shader failed to compile or a pipeline failed to build.
    #[error("shader {shader} (entry point {entry}): {message}")]
    Shader {
        /// File name in shaders/.
        shader: &'static str,
        /// The entry point.
        entry: &'static str,
        /// The validation message.
        message: String,
    },
    /// The GPU reported an error while running recorded work.
    #[error("gpu error during {during}: {message}")]
    Gpu {
        /// What kiln was doing.
        during: String,
        /// What wgpu said.
        message: String,
    },
    /// Data could not be read back from the GPU.
    #[error("readback failed: {0}")]
    Readback(String),
}

impl Error {
    pub(crate) fn shape(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Self {
        Error::ShapeMismatch {
            op,
            lhs: ShapeDisplay(lhs.to_vec()),
            rhs: ShapeDisplay(rhs.to_vec()),
        }
    }

    /// An [`Error::InvalidArgument`] for `op`.
    pub fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            reason: reason.into(),
        }
    }
}
