//! `tunelab kernel`: a Jupyter kernel whose cells are rhai, evaluated in this binary.
//!
//! A notebook cell is a piece of a tunelab script: cells share one scope (a [`Session`]), the
//! value of a cell's last expression is its result, a plan shows as its group table and LR
//! chart, a run as its summary and curves. The kernel speaks the Jupyter messaging protocol
//! 5.3 over ZeroMQ (pure Rust: no system libzmq) and keeps its four jobs apart, as
//! evcxr_jupyter does:
//! - [`connection`]: the connection file, the sockets and the HMAC-SHA256 signatures;
//! - [`message`]: the envelope of a message;
//! - `core`: the request loops (shell, control, heartbeat; the session on its own thread);
//! - [`install`]: the kernelspec.
//!
//! [`display`] turns values into mime bundles and `help` answers completion and inspection.
//! The script layer knows nothing of Jupyter: the kernel imports it, never the reverse.
//!
//! [`Session`]: crate::script::session::Session
use std::path::Path;

pub mod connection;
mod core;
pub mod display;
mod help;
pub mod install;
pub mod message;

pub use install::{Destination, install};

use crate::error::Result;

/// Runs the kernel on the connection file Jupyter wrote, until a `shutdown_request`.
pub fn run(connection_file: &Path) -> Result<()> {
    core::run(connection::ConnectionInfo::from_file(connection_file)?)
}
