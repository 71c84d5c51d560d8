//! A sweep's charts: the optimisation history (every trial's score, the best so far) and one
//! score-against-value panel per searched key.
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{colour, score_range};

/// One trial on a sweep chart.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialPoint {
    pub number: usize,
    pub score: f64,
    /// Stopped by the pruner (drawn hollow, left out of the best-so-far line).
    pub pruned: bool,
    /// Its value of each searched key, on the key's axis (a choice: its position).
    pub values: Vec<f64>,
}

/// One searched key's axis.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyAxis {
    pub key: String,
    pub log_scale: bool,
    /// A choice's values, in words (the axis shows them at positions 0, 1...).
    pub labels: Option<Vec<String>>,
    /// The key takes whole numbers (ticks only there).
    pub integer: bool,
}

/// A tick label: whole numbers plainly, small or large values in e-notation, others to 3 digits.
fn tick(v: f64, integer: bool) -> String {
    if integer {
        return if (v - v.round()).abs() < 1e-6 { format!("{}", v.round() as i64) } else { String::new() };
    }
    if v != 0.0 && (v.abs() < 1e-2 || v.abs() >= 1e4) { format!("{v:.0e}") } else { format!("{}", (v * 1000.0).round() / 1000.0) }
}

fn mark<DB: DrawingBackend, X: plotters::coord::ranged1d::Ranged<ValueType = f64>, Y: plotters::coord::ranged1d::Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    at: (f64, f64),
    pruned: bool,
    c: RGBColor,
) -> std::result::Result<(), String> {
    let style = if pruned { c.mix(0.8).stroke_width(1) } else { c.filled() };
    chart.draw_series(std::iter::once(Circle::new(at, 5, style))).map(|_| ()).map_err(|e| e.to_string())
}

pub(super) fn draw_history<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, metric: &str, higher_is_better: bool, trials: &[TrialPoint]) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let values: Vec<f64> = trials.iter().map(|t| t.score).filter(|s| s.is_finite()).collect();
    let (lo, hi) = score_range(&values);
    let n = trials.iter().map(|t| t.number + 1).max().unwrap_or(1);
    let mut chart = ChartBuilder::on(root)
        .caption(format!("Sweep: dev {metric} per trial (hollow: pruned), best so far"), ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, lo..hi)
        .map_err(e)?;
    chart.configure_mesh().x_label_formatter(&|v| tick(*v, true)).x_desc("trial").y_desc(metric).label_style(("sans-serif", 13)).axis_desc_style(("sans-serif", 15)).draw().map_err(e)?;
    let blue = colour(0, 2);
    for t in trials.iter().filter(|t| t.score.is_finite()) {
        mark(&mut chart, (t.number as f64, t.score), t.pruned, if t.pruned { RGBColor(127, 127, 127) } else { blue })?;
    }
    let mut best: Option<f64> = None;
    let mut line = Vec::new();
    for t in trials.iter().filter(|t| !t.pruned && t.score.is_finite()) {
        let better = best.is_none_or(|b| if higher_is_better { t.score > b } else { t.score < b });
        if better {
            if let Some(b) = best {
                line.push((t.number as f64, b));
            }
            best = Some(t.score);
        }
        line.push((t.number as f64, best.unwrap_or(t.score)));
    }
    if let Some(last) = line.last().copied() {
        line.push((n as f64 - 0.5, last.1));
    }
    chart.draw_series(LineSeries::new(line, colour(3, 4).stroke_width(2))).map_err(e)?;
    Ok(())
}

pub(super) fn draw_parameters<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, metric: &str, keys: &[KeyAxis], trials: &[TrialPoint]) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let values: Vec<f64> = trials.iter().map(|t| t.score).filter(|s| s.is_finite()).collect();
    let (lo, hi) = score_range(&values);
    let panels = root.split_evenly((1, keys.len().max(1)));
    for (k, (axis, area)) in keys.iter().zip(&panels).enumerate() {
        let xs: Vec<f64> = trials.iter().filter_map(|t| t.values.get(k).copied()).filter(|x| x.is_finite()).collect();
        let (mut x0, mut x1) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        let labels = axis.labels.clone();
        if let Some(names) = &labels {
            (x0, x1) = (0.0, names.len().saturating_sub(1) as f64);
        }
        let mut builder = ChartBuilder::on(area);
        builder.caption(&axis.key, ("sans-serif", 16)).margin(12).x_label_area_size(40).y_label_area_size(if k == 0 { 60 } else { 40 });
        let c = colour(k, keys.len());
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart;
                let mut mesh = chart.configure_mesh();
                mesh.label_style(("sans-serif", 12)).x_labels(6);
                if k == 0 {
                    mesh.y_desc(metric);
                }
                let label = |v: &f64| match &labels {
                    Some(names) => {
                        let i = v.round();
                        if (v - i).abs() < 1e-6 && i >= 0.0 { names.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
                    }
                    None => tick(*v, axis.integer),
                };
                mesh.x_label_formatter(&label).draw().map_err(e)?;
                for t in trials.iter().filter(|t| t.score.is_finite()) {
                    if let Some(&x) = t.values.get(k) {
                        mark(&mut chart, (x, t.score), t.pruned, c)?;
                    }
                }
            }};
        }
        if axis.log_scale && x0 > 0.0 {
            body!(builder.build_cartesian_2d((x0 / 1.3..x1 * 1.3).log_scale(), lo..hi).map_err(e)?);
        } else {
            let pad = if labels.is_some() { 0.5 } else { ((x1 - x0) * 0.08).max(1e-9) };
            body!(builder.build_cartesian_2d(x0 - pad..x1 + pad, lo..hi).map_err(e)?);
        }
    }
    Ok(())
}
