//! The one error type of the library.
//!
//! Every variant that comes from user input names the file and, where there is one, the
//! field, tensor or line, so that the message alone tells a researcher what to fix.
use std::path::PathBuf;

/// Everything that can go wrong in tunelab.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A JSON file (a config, a head description) is malformed or has a field of the wrong type.
    #[error("{}: {what}", path.display())]
    Json { path: PathBuf, what: String },

    /// A config value that parses but that tunelab cannot use.
    #[error("{}: field `{field}`: {what}", path.display())]
    Config { path: PathBuf, field: String, what: String },

    /// A checkpoint is unreadable, or a tensor in it is missing or has the wrong shape or type.
    #[error("{}: {what}", path.display())]
    Checkpoint { path: PathBuf, what: String },

    /// The tokenizer could not be loaded or could not encode a text.
    #[error("{}: {what}", path.display())]
    Tokenizer { path: PathBuf, what: String },

    /// A data file is unreadable, or a row in it is invalid.
    #[error("{}", located(path, *line, what))]
    Data { path: PathBuf, line: Option<usize>, what: String },

    /// Training stopped: the dev loss exploded.
    #[error(
        "the run diverged: the dev loss reached {loss:e} at optimizer step {step}, more than 100 times a constant prediction's ({trivial:.4}); lower the learning rate (the last checkpoint before it is still usable)"
    )]
    Diverged { step: usize, loss: f64, trivial: f64 },

    /// A script failed to parse or to run, at a position in it.
    #[error("{}", script_position(script, *line, *column, what))]
    Script { script: String, line: Option<usize>, column: Option<usize>, what: String },

    /// Training stopped: the loss became NaN or infinite.
    #[error("the loss became {value} at optimizer step {step}; the last checkpoint before it is still usable")]
    NonFiniteLoss { step: usize, value: f64 },

    /// A value given by the user (an option, an argument) is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),

    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

fn script_position(script: &str, line: Option<usize>, column: Option<usize>, what: &str) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{script}:{l}:{c}: {what}"),
        (Some(l), None) => format!("{script}:{l}: {what}"),
        _ => format!("{script}: {what}"),
    }
}

fn located(path: &std::path::Path, line: Option<usize>, what: &str) -> String {
    match line {
        Some(line) => format!("{}:{line}: {what}", path.display()),
        None => format!("{}: {what}", path.display()),
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn checkpoint(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Checkpoint { path: path.into(), what: what.into() }
    }
}
