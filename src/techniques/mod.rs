//! The techniques: re-initialising the top layers, averaging weights, freezing blocks,
//! adversarial training, Mixout, and the training loss.
//!
//! Each is a plain value (serde, `Debug`, `Clone`) that a [`crate::recipe::Recipe`] holds and
//! the trainer applies at a fixed point of the run.
pub mod adversarial;
pub mod freeze;
pub mod loss;
pub mod mixout;
pub mod reinit;
pub mod swa;

pub use adversarial::Adversarial;
pub use freeze::Freeze;
pub use loss::Loss;
pub use reinit::{Reinit, ReinitReport};
pub use swa::{Averaging, Swa, SwaLr, WeightAverage};
