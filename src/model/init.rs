//! transformers' `_init_weights`, drawn from tunelab's own seeded generator.
//!
//! Dense weights, embedding tables (and MPNet's relative position bias table) from
//! N(0, `initializer_range`²), biases 0, LayerNorm
//! weights 1 and biases 0. The normal draws come from a ChaCha8 generator seeded by the
//! caller, not from libtorch's global generator, so the same seed gives the same weights
//! whatever else runs in the process (other threads, dropout, data shuffling).
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use tch::{Kind, Tensor};

use crate::model::roles::Role;

/// Initialises each `(name, tensor, role)` in order, in place.
pub fn init_weights<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a Tensor, Role)>, std: f64, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, std as f32).expect("initializer_range is a valid standard deviation");
    tch::no_grad(|| {
        for (name, t, role) in tensors {
            let mut t = t.shallow_clone();
            let _ = match role {
                Role::Weight | Role::Embedding | Role::PositionBias => {
                    let values: Vec<f32> = (0..t.numel()).map(|_| normal.sample(&mut rng)).collect();
                    let drawn = Tensor::from_slice(&values).view(t.size().as_slice()).to_kind(Kind::Float);
                    t.copy_(&drawn.to_device(t.device()));
                    t
                }
                Role::Bias => t.zero_(),
                Role::Norm if name.ends_with(".weight") => t.fill_(1.0),
                Role::Norm => t.zero_(),
            };
        }
    });
}
