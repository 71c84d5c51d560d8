//! Hyper-parameter search (issue 23). So far: the successive-halving pruner that stops a trial
//! whose intermediate dev scores fall behind the other trials' at the same rung.
pub mod pruner;

pub use pruner::{Rungs, SuccessiveHalving};
