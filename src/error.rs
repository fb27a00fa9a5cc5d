//! One error type for the whole crate.

use std::fmt;
use std::path::PathBuf;

/// The underlying cause of an [`Error::Format`], when there is one (a gzip or safetensors
/// error, say).
pub type BoxedSource = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    /// A file or folder could not be read, written or created. The message names the path;
    /// the system's reason is [`std::error::Error::source`], the [`std::io::Error`] (as is the
    /// Rust convention, the message does not repeat it: [`Error::report`] gives both).
    #[error("{action} {}", .path.display())]
    Io {
        /// What kiln was doing: "cannot read", "cannot write", "cannot create folder".
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Bytes are not a valid file of the expected format (a corrupt checkpoint, an IDX file
    /// with a bad header). The message names the format, the file and the reason; a decoder
    /// error that caused it is [`std::error::Error::source`] ([`Error::report`] gives both).
    #[error("{format} {}: {reason}", .file.display())]
    Format {
        /// The format that was expected: "idx", "checkpoint", ...
        format: &'static str,
        /// The file (or, for bytes from memory, what they are: "images", "checkpoint bytes").
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// The decoder's own error, when one caused this.
        #[source]
        source: Option<BoxedSource>,
    },
}

impl Error {
    /// The message followed by each underlying cause, `": "`-separated ("cannot read
    /// model.safetensors: No such file or directory (os error 2)"): what to show a person when
    /// nothing else walks [`std::error::Error::source`] (anyhow's `{:#}` does the same).
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cause = c.source();
        }
        out
    }

    pub(crate) fn shape(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Self {
        Error::ShapeMismatch {
            op,
            lhs: ShapeDisplay(lhs.to_vec()),
            rhs: ShapeDisplay(rhs.to_vec()),
        }
    }

    /// An [`Error::Io`]: `action` ("cannot read", "cannot write", ...) failed on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Format`] without an underlying cause: `file` is not valid `format`.
    pub fn format(
        format: &'static str,
        file: impl Into<PathBuf>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Format {
            format,
            file: file.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// An [`Error::Format`] caused by a decoder's error `source`, which stays reachable through
    /// [`std::error::Error::source`].
    pub fn format_caused(
        format: &'static str,
        file: impl Into<PathBuf>,
        reason: impl Into<String>,
        source: impl Into<BoxedSource>,
    ) -> Self {
        Error::Format {
            format,
            file: file.into(),
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// The same error about another file: an [`Error::Format`] now names `file` (for bytes
    /// parsed from memory that came from a file). Other errors are returned unchanged.
    pub fn in_file(self, file: impl Into<PathBuf>) -> Self {
        match self {
            Error::Format {
                format,
                reason,
                source,
                ..
            } => Error::Format {
                format,
                file: file.into(),
                reason,
                source,
            },
            other => other,
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
