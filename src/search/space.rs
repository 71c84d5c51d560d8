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
            Distribution::Uniform { low, high } if !(low.is_finite() && high.is_finite() && low < high) => {
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

    /// `base` with each parameter's value written at its key.
    pub fn apply(&self, base: &RunSpec, params: &Params) -> Result<RunSpec> {
        let mut json: Value = serde_json::from_str(&base.to_json_with_defaults()).map_err(|e| Error::Invalid(format!("the base specification: {e}")))?;
        for (key, value) in params {
            set(&mut json, key, value.clone())?;
        }
        let keys: Vec<&str> = params.keys().map(String::as_str).collect();
        RunSpec::from_json(&json.to_string(), std::path::Path::new("search space"))
            .map_err(|e| Error::Invalid(format!("search space {}: {}", keys.join(", "), e.to_string().trim_start_matches("search space: "))))
    }

    /// Every combination of the keys' points, the first key varying slowest (the grid sampler's
    /// order). An error names a key whose distribution is continuous.
    pub fn grid(&self) -> Result<Vec<Params>> {
        let mut points = vec![Params::new()];
        for (key, distribution) in &self.0 {
            let values = distribution.points().ok_or_else(|| {
                Error::Invalid(format!("the grid sampler needs a finite set of values for {key}: give it as choice([...]) or int(low, high), not a continuous range"))
            })?;
            points = points.iter().flat_map(|p| values.iter().map(move |v| {
                let mut next = p.clone();
                next.insert(key.clone(), v.clone());
                next
            })).collect();
        }
        Ok(points)
    }
}

/// Writes `value` at the dotted `key` of a specification's JSON. Sections left empty (`null`,
/// like an absent `recipe.reinit`) become maps on the way; a name the section does not have is
/// an error listing those it has.
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
                // A one-key map is one of several forms (`recipe.warmup`: {"steps": n} or
                // {"fraction": f}): another key replaces it, and the specification judges the form.
                if !map.contains_key(*part) && map.len() == 1 && i + 1 == parts.len() {
                    map.clear();
                }
                if !map.contains_key(*part) && !map.is_empty() {
                    let known: Vec<&str> = map.keys().map(String::as_str).collect();
                    let section = if path.is_empty() { "the specification".to_string() } else { path.clone() };
                    return Err(Error::Invalid(format!("search space {key}: {section} has no option `{part}` (it has: {})", known.join(", "))));
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
        let typo = set(&mut json, "recipe.lr.top_lrr", Value::from(1.0)).unwrap_err().to_string();
        assert!(typo.contains("recipe.lr has no option `top_lrr`"), "{typo}");
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
