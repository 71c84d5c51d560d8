//! Samplers: how a sweep picks the next trial's parameters.
//!
//! - `grid`: every combination of the keys' values ([`Space::grid`]), trial `n` taking the
//!   `n`-th, so that a grid is covered once however many workers share it.
//! - `random`: each key drawn independently from its distribution, by a generator seeded with
//!   the sweep's seed and the trial's number (the same trial draws the same values on any
//!   machine, in any order).
//! - `tpe`: the Tree-structured Parzen Estimator (Bergstra et al. 2011, *Algorithms for
//!   Hyper-Parameter Optimization*), one estimator per key as Optuna's default TPE does, from
//!   the [`tpe`] crate: after `startup` random trials, the finished trials are split into the
//!   best γ = 10% and the rest, and of 24 candidates drawn near the best ones the one with the
//!   highest density ratio is taken. It conditions on every finished trial visible in the
//!   sweep's folder when the trial starts (asynchronous parallel search, as Optuna's
//!   distributed mode does); a pruned trial counts with the score it was stopped at.
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::space::{Distribution, Params, Space};
use crate::error::{Error, Result};

/// Which sampler a sweep uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    Grid,
    Random,
    Tpe,
}

/// A trial that has a score, as the TPE sampler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub params: Params,
    /// Lower is better (a score to maximise comes negated).
    pub loss: f64,
}

/// The seed of trial `number`'s draws.
fn trial_seed(seed: u64, number: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(number as u64)
}

impl Sampler {
    /// Its name in a script (`grid`, `random`, `tpe`).
    pub fn name(self) -> &'static str {
        match self {
            Sampler::Grid => "grid",
            Sampler::Random => "random",
            Sampler::Tpe => "tpe",
        }
    }
}

impl Sampler {
    /// Trial `number`'s parameters. `history` is what TPE conditions on; until it holds
    /// `startup` finished trials, TPE draws at random (Optuna's `n_startup_trials`).
    pub fn suggest(&self, space: &Space, number: usize, seed: u64, history: &[Observed], startup: usize) -> Result<Params> {
        match self {
            Sampler::Grid => space.grid_point(number),
            Sampler::Random => Ok(random(space, &mut rand_chacha::ChaCha8Rng::seed_from_u64(trial_seed(seed, number)))),
            Sampler::Tpe if history.len() < startup.max(1) => Ok(random(space, &mut rand_chacha::ChaCha8Rng::seed_from_u64(trial_seed(seed, number)))),
            Sampler::Tpe => tpe(space, number, seed, history),
        }
    }
}

fn random(space: &Space, rng: &mut impl Rng) -> Params {
    space
        .0
        .iter()
        .map(|(key, d)| {
            let value = match d {
                Distribution::Uniform { low, high } => Value::from(rng.random_range(*low..=*high)),
                Distribution::LogUniform { low, high } => Value::from(rng.random_range(low.ln()..=high.ln()).exp()),
                Distribution::Int { low, high } => Value::from(rng.random_range(*low..=*high)),
                Distribution::Choice { values } => values[rng.random_range(0..values.len())].clone(),
            };
            (key.clone(), value)
        })
        .collect()
}

/// Where a key's value sits on the axis TPE models: itself, its log, or its position.
fn internal(d: &Distribution, value: &Value) -> Option<f64> {
    match d {
        Distribution::LogUniform { .. } => value.as_f64().map(f64::ln),
        _ => d.position(value),
    }
}

fn tpe(space: &Space, number: usize, seed: u64, history: &[Observed]) -> Result<Params> {
    use rand_tpe::SeedableRng as _;
    let fail = |key: &str, e: String| Error::Invalid(format!("TPE sampler, {key}: {e}"));
    let mut rng = rand_tpe::rngs::StdRng::seed_from_u64(trial_seed(seed, number));
    let mut params = Params::new();
    for (key, d) in &space.0 {
        // The ranges are half-open: the upper end is nudged inside so that a value drawn there fits.
        let (range, estimator) = match d {
            Distribution::Uniform { low, high } => (tpe::range(*low, *high), tpe::parzen_estimator()),
            Distribution::LogUniform { low, high } => (tpe::range(low.ln(), high.ln()), tpe::parzen_estimator()),
            Distribution::Int { low, high } => (tpe::range(*low as f64 - 0.5, *high as f64 + 0.5), tpe::parzen_estimator()),
            Distribution::Choice { values } => (tpe::categorical_range(values.len()), tpe::histogram_estimator()),
        };
        let range = range.map_err(|e| fail(key, e.to_string()))?;
        let mut optimizer = tpe::TpeOptimizer::new(estimator, range);
        for seen in history {
            let Some(x) = seen.params.get(key).and_then(|v| internal(d, v)) else { continue };
            let x = x.clamp(range.start(), range.end().next_down());
            optimizer.tell(x, seen.loss).map_err(|e| fail(key, e.to_string()))?;
        }
        let x = optimizer.ask(&mut rng).map_err(|e| fail(key, e.to_string()))?;
        let value = match d {
            Distribution::Uniform { low, high } => Value::from(x.clamp(*low, *high)),
            Distribution::LogUniform { low, high } => Value::from(x.exp().clamp(*low, *high)),
            Distribution::Int { low, high } => Value::from((x.round() as i64).clamp(*low, *high)),
            Distribution::Choice { values } => values[(x.floor() as usize).min(values.len() - 1)].clone(),
        };
        params.insert(key.clone(), value);
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;

    fn space() -> Space {
        Space(IndexMap::from([
            ("lr".to_string(), Distribution::LogUniform { low: 1e-5, high: 1e-3 }),
            ("decay".to_string(), Distribution::Uniform { low: 0.5, high: 1.0 }),
            ("layers".to_string(), Distribution::Int { low: 0, high: 3 }),
            ("pooling".to_string(), Distribution::Choice { values: vec![Value::from("mean"), Value::from("cls")] }),
        ]))
    }

    fn inside(space: &Space, p: &Params) -> bool {
        space.0.iter().all(|(k, d)| match d {
            Distribution::Uniform { low, high } | Distribution::LogUniform { low, high } => p[k].as_f64().is_some_and(|x| x >= *low && x <= *high),
            Distribution::Int { low, high } => p[k].as_i64().is_some_and(|x| x >= *low && x <= *high),
            Distribution::Choice { values } => values.contains(&p[k]),
        })
    }

    #[test]
    fn random_and_tpe_draw_the_same_values_under_the_same_seed() {
        let space = space();
        let history: Vec<Observed> = (0..12)
            .map(|n| {
                let params = Sampler::Random.suggest(&space, n, 7, &[], 0).unwrap();
                let loss = (params["lr"].as_f64().unwrap().ln() - 1e-4f64.ln()).abs() + params["layers"].as_i64().unwrap() as f64;
                Observed { params, loss }
            })
            .collect();
        for sampler in [Sampler::Random, Sampler::Tpe] {
            for n in 0..20 {
                let a = sampler.suggest(&space, n, 7, &history, 5).unwrap();
                let b = sampler.suggest(&space, n, 7, &history, 5).unwrap();
                assert_eq!(a, b);
                assert!(inside(&space, &a), "{a:?}");
            }
            let other = sampler.suggest(&space, 15, 8, &history, 5).unwrap();
            assert_ne!(other, sampler.suggest(&space, 15, 7, &history, 5).unwrap());
        }
    }

    #[test]
    fn tpe_moves_towards_the_good_region() {
        // One key; the loss is the distance of log(lr) from log(1e-4). After 30 random trials,
        // TPE's suggestions should be closer to 1e-4 than random ones, on average.
        let space = Space(IndexMap::from([("lr".to_string(), Distribution::LogUniform { low: 1e-6, high: 1e-2 })]));
        let distance = |p: &Params| (p["lr"].as_f64().unwrap().ln() - 1e-4f64.ln()).abs();
        let history: Vec<Observed> = (0..30)
            .map(|n| {
                let params = Sampler::Random.suggest(&space, n, 1, &[], 0).unwrap();
                Observed { loss: distance(&params), params }
            })
            .collect();
        let mean = |s: Sampler| (30..80).map(|n| distance(&s.suggest(&space, n, 1, &history, 10).unwrap())).sum::<f64>() / 50.0;
        let (tpe, random) = (mean(Sampler::Tpe), mean(Sampler::Random));
        assert!(tpe < random / 2.0, "TPE {tpe} vs random {random}");
    }
}
