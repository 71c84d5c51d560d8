//! Hyper-parameter search: a [`Space`] of specification keys, a [`Sampler`] (grid, random,
//! TPE) that picks each trial's values, the successive-halving pruner that stops a trial whose
//! intermediate dev scores fall behind the other trials' at the same rung, and the [`Sweep`]
//! that runs trials from a folder shared by any number of workers.
pub mod pruner;
pub mod sampler;
pub mod space;
pub mod sweep;

pub use pruner::{Rungs, SuccessiveHalving};
pub use sampler::Sampler;
pub use space::{Distribution, Params, Space};
pub use sweep::{Leaderboard, Sweep, Trial, TrialState, report};
