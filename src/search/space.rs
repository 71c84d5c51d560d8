//! A search space: a distribution for each specification key, addressed by its path in the run
//! specification (`recipe.lr.top_lr`, `recipe.reinit.top_layers`, `training.batch_size`; list
//! items by position: `recipe.lr.sets.2.lr`). A trial's parameters are one value per key,
//! written into a copy of the base specification ([`Space::apply`]); [`Space::validate`] checks
//! every key and the ends of every range against the model and the data before anything trains.
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::spec::RunSpec;

/// Where a parameter's values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Uniform on `[low, high]`.
    Uniform { low: f64, high: f64 },
    /// Uniform in log space on `[low, high]` (learning rates): each decade equally likely.
    LogUniform { low: f64, high: f64 },
    /// An integer from `low` to `high`, both included.
    Int { low: i64, high: i64 },
    /// One of the values (any JSON value the key takes: numbers, strings, maps).
    Choice { values: Vec<Value> },
}

/// One value per key: a trial's parameters.
pub type Params = IndexMap<String, Value>;

impl Distribution {
    /// Checks the distribution itself (`key` names it in the message).
    pub fn check(&self, key: &str) -> Result<()> {
        let bad = |what: String| Err(Error::Invalid(format!("search space {key}: {what}")));
        match self {
            Distribution::Uniform { low, high } if !(low.is_finite() && high.is_finite() && low < high && (high - low).is_finite()) => {
                bad(format!("uniform({low}, {high}) needs finite bounds with low < high"))
            }
            Distribution::LogUniform { low, high } if !(low.is_finite() && high.is_finite() && *low > 0.0 && low < high) => {
                bad(format!("log_uniform({low}, {high}) needs 0 < low < high"))
            }
            Distribution::Int { low, high } if low > high => bad(format!("int({low}, {high}) needs low <= high")),
            Distribution::Choice { values } if values.is_empty() => bad("choice([]) has nothing to choose from".into()),
            _ => Ok(()),
        }
    }

    /// The values that bound the distribution (its ends, or every choice): what
    /// [`Space::validate`] tries.
    pub fn extremes(&self) -> Vec<Value> {
        match self {
            Distribution::Uniform { low, high } | Distribution::LogUniform { low, high } => vec![Value::from(*low), Value::from(*high)],
            Distribution::Int { low, high } => vec![Value::from(*low), Value::from(*high)],
            Distribution::Choice { values } => values.clone(),
        }
    }

    /// Every value of a finite distribution (a choice, an integer range), for the grid.
    pub fn points(&self) -> Option<Vec<Value>> {
        match self {
            Distribution::Int { low, high } => Some((*low..=*high).map(Value::from).collect()),
            Distribution::Choice { values } => Some(values.clone()),
            _ => None,
        }
    }

    /// Whether the distribution is drawn on a log scale (its charts use one too).
    pub fn log_scale(&self) -> bool {
        matches!(self, Distribution::LogUniform { .. })
    }

    /// A value as a number on the distribution's axis: itself, or the choice's position.
    pub fn position(&self, value: &Value) -> Option<f64> {
        match self {
            Distribution::Choice { values } => values.iter().position(|v| v == value).map(|i| i as f64),
            _ => value.as_f64(),
        }
    }
}

/// Keys and their distributions, in the order trials list them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Space(pub IndexMap<String, Distribution>);

impl Space {
    /// Checks every key against `base` before anything is written or trained: the key must be
    /// an option of the run specification (a typo is an error naming it and the keys there
    /// are), and the specification must plan (the model, the data and the recipe agree) with
    /// each end of the key's range and each of its choices.
    pub fn validate(&self, base: &RunSpec) -> Result<()> {
        if self.0.is_empty() {
            return Err(Error::Invalid("the search space is empty: give at least one key, e.g. #{ \"recipe.lr.top_lr\": log_uniform(1e-5, 3e-4) }".into()));
        }
        for (key, distribution) in &self.0 {
            distribution.check(key)?;
            for value in distribution.extremes() {
                let params = Params::from([(key.clone(), value.clone())]);
                let spec = self.apply(base, &params)?;
                spec.plan().map_err(|e| Error::Invalid(format!("search space {key} = {value}: {e}")))?;
            }
        }
        Ok(())
    }

    /// `base` with each parameter's value written at its key. A key the specification does not
    /// have is an error naming it (and the options of its section): the value must be found at
    /// the key again once the specification has read it.
    pub fn apply(&self, base: &RunSpec, params: &Params) -> Result<RunSpec> {
        let original: Value = serde_json::from_str(&base.to_json_with_defaults()).map_err(|e| Error::Invalid(format!("the base specification: {e}")))?;
        let mut json = original.clone();
        for (key, value) in params {
            set(&mut json, key, value.clone())?;
        }
        let keys: Vec<&str> = params.keys().map(String::as_str).collect();
        let spec = RunSpec::from_json(&json.to_string(), std::path::Path::new("search space"))
            .map_err(|e| Error::Invalid(format!("search space {}: {}", keys.join(", "), e.to_string().trim_start_matches("search space: "))))?;
        let read: Value = serde_json::from_str(&spec.to_json_with_defaults()).map_err(|e| Error::Invalid(format!("the specification: {e}")))?;
        for (key, value) in params {
            let arrived = get(&read, key).is_some_and(|v| v == value || (v.as_f64().is_some() && v.as_f64() == value.as_f64()));
            if !arrived {
                return Err(Error::Invalid(format!("search space {key}: the specification has no option there{}", known(&original, key))));
            }
        }
        Ok(spec)
    }

    /// The largest grid a sweep takes: beyond it, a grid is a mistake (a wide `int`).
    pub const MAX_GRID: usize = 100_000;

    /// How many points the grid has (every combination of the keys' values). An error names a
    /// key whose distribution is continuous, or says the grid is too large.
    pub fn grid_size(&self) -> Result<usize> {
        let mut size: usize = 1;
        for (key, distribution) in &self.0 {
            let n = match distribution {
                Distribution::Int { low, high } => usize::try_from(high.saturating_sub(*low)).ok().and_then(|n| n.checked_add(1)),
                Distribution::Choice { values } => Some(values.len()),
                _ => {
                    return Err(Error::Invalid(format!(
                        "the grid sampler needs a finite set of values for {key}: give it as choice([...]) or int(low, high), not a continuous range"
                    )));
                }
            };
            size = n.and_then(|n| size.checked_mul(n)).filter(|&s| s <= Self::MAX_GRID).ok_or_else(|| {
                Error::Invalid(format!("the grid has more than {} points (at {key}): narrow the ranges, or use the random or tpe sampler", Self::MAX_GRID))
            })?;
        }
        Ok(size)
    }

    /// The grid's point `n`: the first key varies slowest (the grid sampler's order).
    pub fn grid_point(&self, n: usize) -> Result<Params> {
        let size = self.grid_size()?;
        if n >= size {
            return Err(Error::Invalid(format!("the grid has {size} points; trial {n} has none")));
        }
        let mut stride = size;
        let mut point = Params::new();
        for (key, distribution) in &self.0 {
            let count = match distribution {
                Distribution::Int { low, high } => (high - low) as usize + 1,
                Distribution::Choice { values } => values.len(),
                _ => unreachable!("grid_size accepted only finite keys"),
            };
            stride /= count;
            let i = (n / stride) % count;
            let value = match distribution {
                Distribution::Int { low, .. } => Value::from(low + i as i64),
                Distribution::Choice { values } => values[i].clone(),
                _ => unreachable!("grid_size accepted only finite keys"),
            };
            point.insert(key.clone(), value);
        }
        Ok(point)
    }

    /// Every point of the grid, in order.
    pub fn grid(&self) -> Result<Vec<Params>> {
        (0..self.grid_size()?).map(|n| self.grid_point(n)).collect()
    }
}

/// Sections that take one of several forms, by their keys: writing one key of a group replaces
/// the others (`recipe.warmup` is `{"steps": n}` or `{"fraction": f}`).
const ONE_OF: &[&[&str]] = &[&["steps", "fraction"]];

/// Writes `value` at the dotted `key` of a specification's JSON. Sections left empty (`null`,
/// like an absent `recipe.reinit`) become maps on the way. Whether the key is an option is the
/// specification's to say ([`Space::apply`] checks the value arrived where the key points).
fn set(json: &mut Value, key: &str, value: Value) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut here = json;
    for (i, part) in parts.iter().enumerate() {
        let path = parts[..i].join(".");
        if here.is_null() {
            *here = Value::Object(Default::default());
        }
        here = match here {
            Value::Object(map) => {
                if !map.contains_key(*part) && ONE_OF.iter().any(|group| group.contains(part) && map.keys().all(|k| group.contains(&k.as_str()))) {
                    map.clear();
                }
                map.entry(part.to_string()).or_insert(Value::Null)
            }
            Value::Array(items) => {
                let len = items.len();
                let index: usize = part.parse().map_err(|_| Error::Invalid(format!("search space {key}: {path} is a list; address its items by position ({path}.0 .. {path}.{})", len.saturating_sub(1))))?;
                items.get_mut(index).ok_or_else(|| Error::Invalid(format!("search space {key}: {path} has {len} items (positions 0 to {})", len.saturating_sub(1))))?
            }
            other => return Err(Error::Invalid(format!("search space {key}: {path} is a value ({other}), not a section with options"))),
        };
    }
    *here = value;
    Ok(())
}

/// The value at the dotted `key`, if the JSON has one there.
fn get<'a>(json: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(json, |here, part| match here {
        Value::Object(map) => map.get(part),
        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// The names a section of the specification has, for a message about a key it does not have.
fn known(json: &Value, key: &str) -> String {
    let section = key.rsplit_once('.').map_or("", |(s, _)| s);
    let here = if section.is_empty() { Some(json) } else { get(json, section) };
    match here {
        Some(Value::Object(map)) => format!(" ({} has: {})", if section.is_empty() { "the specification" } else { section }, map.keys().cloned().collect::<Vec<_>>().join(", ")),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_is_every_combination_once() {
        let space = Space(IndexMap::from([
            ("a".to_string(), Distribution::Choice { values: vec![Value::from(1), Value::from(2), Value::from(3)] }),
            ("b".to_string(), Distribution::Int { low: 0, high: 1 }),
        ]));
        let grid = space.grid().unwrap();
        assert_eq!(grid.len(), 6);
        let mut seen: Vec<String> = grid.iter().map(|p| serde_json::to_string(p).unwrap()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 6);
        assert_eq!(grid[0]["a"], Value::from(1));
        assert_eq!(grid[1]["b"], Value::from(1));
        let continuous = Space(IndexMap::from([("x".to_string(), Distribution::Uniform { low: 0.0, high: 1.0 })]));
        assert!(continuous.grid().unwrap_err().to_string().contains("x"));
    }

    #[test]
    fn keys_are_written_where_they_point() {
        let mut json = serde_json::json!({ "recipe": { "lr": { "kind": "grouped", "sets": [{ "lr": 1.0, "name": "a" }, { "lr": 2.0, "name": "b" }] }, "reinit": null, "warmup": { "steps": 0 } } });
        set(&mut json, "recipe.warmup.fraction", Value::from(0.1)).unwrap();
        assert_eq!(json["recipe"]["warmup"], serde_json::json!({ "fraction": 0.1 }));
        set(&mut json, "recipe.lr.sets.1.lr", Value::from(5.0)).unwrap();
        set(&mut json, "recipe.reinit.top_layers", Value::from(2)).unwrap();
        assert_eq!(json["recipe"]["lr"]["sets"][1]["lr"], Value::from(5.0));
        assert_eq!(json["recipe"]["reinit"]["top_layers"], Value::from(2));
        let past = set(&mut json, "recipe.lr.sets.5.lr", Value::from(1.0)).unwrap_err().to_string();
        assert!(past.contains("has 2 items"), "{past}");
        let scalar = set(&mut json, "recipe.lr.sets.0.lr.x", Value::from(1.0)).unwrap_err().to_string();
        assert!(scalar.contains("is a value"), "{scalar}");
    }

    #[test]
    fn bad_distributions_name_their_key() {
        for (d, what) in [
            (Distribution::LogUniform { low: 0.0, high: 1.0 }, "0 < low"),
            (Distribution::Uniform { low: 2.0, high: 1.0 }, "low < high"),
            (Distribution::Int { low: 3, high: 1 }, "low <= high"),
            (Distribution::Choice { values: vec![] }, "nothing to choose"),
        ] {
            let e = d.check("recipe.lr.top_lr").unwrap_err().to_string();
            assert!(e.contains("recipe.lr.top_lr") && e.contains(what), "{e}");
        }
    }
}
