//! The techniques that touch weights: re-initialising the top layers and averaging weights.
//!
//! Each is a plain value (serde, `Debug`, `Clone`) that a [`crate::recipe::Recipe`] holds and
//! the trainer applies at a fixed point of the run.
pub mod reinit;
pub mod swa;

pub use reinit::{Reinit, ReinitReport};
pub use swa::{Averaging, Swa, SwaLr, WeightAverage};
