//! Plots with plotters: headless (the DejaVu Sans font ships inside the crate), SVG or PNG by
//! the file's extension.
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::files::atomic_write;
use crate::groups::GroupTable;
use crate::recipe::LrTable;
use crate::run_dir::{Curves, RunDir};

mod sweep;
pub use sweep::{KeyAxis, TrialPoint};

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("DejaVuSans.ttf");
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| ()).expect("the bundled font is valid");
    });
}

/// The colour of the `i`-th line: a qualitative palette, then a gradient for many groups.
fn colour(i: usize, n: usize) -> RGBColor {
    const PALETTE: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    if n <= PALETTE.len() {
        return PALETTE[i];
    }
    // Beyond ten groups (a deep model's layers), hues evenly around the colour wheel.
    let h = i as f64 / n as f64;
    let c = HSLColor(h * 0.85, 0.65, 0.45).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// Draws every group's LR over the run, with markers where the warm-up ends and SWA starts.
pub fn draw_lr<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, lrs: &LrTable, log_scale: bool) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let steps = lrs.lrs.len().max(1);
    let peak = lrs.lrs.iter().flatten().cloned().fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let mut builder = ChartBuilder::on(root);
    let chart = builder
        .caption("Learning rate of each parameter group", ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80);
    let n = lrs.groups.len();
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc("optimizer step")
                .y_desc("learning rate")
                .x_label_formatter(&step_label)
                .y_label_formatter(&|v| format!("{v:.1e}"))
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(e)?;
            for (g, name) in lrs.groups.iter().enumerate() {
                let c = colour(g, n);
                let points = lrs.lrs.iter().enumerate().map(|(k, row)| (k as f64, row[g]));
                let points: Vec<(f64, f64)> = if log_scale { points.filter(|p| p.1 > 0.0).collect() } else { points.collect() };
                chart
                    .draw_series(LineSeries::new(points, c.stroke_width(2)))
                    .map_err(e)?
                    .label(name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
            }
            let top = if log_scale { peak * 1.5 } else { peak * 1.08 };
            let bottom = if log_scale { peak * 1e-4 } else { 0.0 };
            for (at, label, c) in [(Some(lrs.warmup_end), "warm-up ends", BLACK), (lrs.swa_start, "SWA starts", RED)] {
                if let Some(at) = at.filter(|&a| a > 0 && a < steps) {
                    let x = at as f64;
                    chart
                        .draw_series(DashedLineSeries::new(vec![(x, bottom.max(f64::MIN_POSITIVE)), (x, top)], 6, 4, c.mix(0.7).stroke_width(1)))
                        .map_err(e)?;
                    chart
                        .draw_series(std::iter::once(Text::new(format!("{label} ({at})"), (x, top), ("sans-serif", 13).into_font().color(&c))))
                        .map_err(e)?;
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 14))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(e)?;
        }};
    }
    let x = 0f64..steps as f64;
    if log_scale {
        body!(chart.build_cartesian_2d(x, (peak * 1e-4..peak * 1.5).log_scale()).map_err(e)?);
    } else {
        body!(chart.build_cartesian_2d(x, 0f64..peak * 1.12).map_err(e)?);
    }
    Ok(())
}

/// One recipe's scores over seeds (or folds), for [`Chart::scores`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSet {
    pub name: String,
    /// The best dev score of each run.
    pub best: Vec<f64>,
    /// The averaged weights' score of each run that averaged.
    pub swa: Vec<f64>,
}

/// What a [`Chart`] shows.
#[derive(Debug, Clone)]
enum Content {
    Lr { lrs: LrTable, log_scale: bool },
    Runs(Vec<Curves>),
    Scores { what: String, sets: Vec<ScoreSet>, trivial: Option<(String, f64)> },
    SweepHistory { metric: String, higher_is_better: bool, trials: Vec<TrialPoint> },
    SweepParameters { metric: String, keys: Vec<KeyAxis>, trials: Vec<TrialPoint> },
}

/// A chart: shown inline in a notebook (with the `evcxr` feature), saved as `.svg` or `.png`.
///
/// ```
/// use tunelab::groups::{GroupTable, LrLayout, ParamInfo, Role};
/// use tunelab::{Recipe, plot::Chart};
/// let params = [ParamInfo::new("embeddings.w", Role::Embedding, 1), ParamInfo::new("encoder.layer.0.w", Role::Weight, 1), ParamInfo::new("head.weight", Role::Weight, 1)];
/// let table = GroupTable::build(&params, 1, &LrLayout::Llrd { top_lr: 1e-4, decay: 0.9, head_lr: 1e-3 }, 0.01)?;
/// let chart = Chart::lr(&Recipe::default().lr_table(&table, 100)?);
/// assert!(chart.svg().starts_with("<svg"));
/// # Ok::<(), tunelab::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Chart {
    content: Content,
    size: (u32, u32),
}

impl Chart {
    /// Every group's LR over the run, with the warm-up end and the SWA start marked.
    pub fn lr(lrs: &LrTable) -> Self {
        Chart { content: Content::Lr { lrs: lrs.clone(), log_scale: false }, size: (1000, 600) }
    }

    /// The same on a logarithmic LR axis (LLRD's ratios become equal gaps).
    pub fn lr_log(lrs: &LrTable) -> Self {
        Chart { content: Content::Lr { lrs: lrs.clone(), log_scale: true }, size: (1000, 600) }
    }

    /// Training loss (raw and smoothed) and the dev metric at each evaluation (the averaged
    /// weights dashed), one colour per run.
    pub fn runs(runs: &[Curves]) -> Self {
        Chart { content: Content::Runs(runs.to_vec()), size: (1200, 500) }
    }

    /// Reads run folders and charts them, the dev metric being the one that selected each
    /// run's best weights.
    pub fn run_dirs(dirs: &[impl AsRef<Path>]) -> Result<Self> {
        Chart::run_dirs_metric(dirs, None)
    }

    /// The same with a dev metric of your choice (`pearson`, `macro_f1`...).
    pub fn run_dirs_metric(dirs: &[impl AsRef<Path>], metric: Option<&str>) -> Result<Self> {
        if dirs.is_empty() {
            return Err(Error::Invalid("no run to plot: give at least one run folder".into()));
        }
        let runs = dirs.iter().map(|d| RunDir::open(d.as_ref())?.curves(metric)).collect::<Result<Vec<_>>>()?;
        Ok(Chart::runs(&runs))
    }

    /// Every run's score per recipe, with the mean and ± one standard deviation. `what` names
    /// the score (`best dev rmse`, `out-of-fold rmse`); `trivial`, a trivial predictor's name and
    /// score on the same rows, is drawn as a dashed line.
    pub fn scores(what: &str, sets: Vec<ScoreSet>, trivial: Option<(String, f64)>) -> Self {
        Chart { content: Content::Scores { what: what.to_string(), sets, trivial }, size: (1000, 550) }
    }

    /// A sweep's optimisation history: every trial's score (pruned ones hollow, at the score
    /// they were stopped at) and the best finished score so far.
    pub fn sweep_history(metric: &str, higher_is_better: bool, trials: Vec<TrialPoint>) -> Self {
        Chart { content: Content::SweepHistory { metric: metric.to_string(), higher_is_better, trials }, size: (1000, 500) }
    }

    /// One panel per searched key: each trial's score against its value of the key.
    pub fn sweep_parameters(metric: &str, keys: Vec<KeyAxis>, trials: Vec<TrialPoint>) -> Self {
        let width = 120 + 380 * keys.len().max(1) as u32;
        Chart { content: Content::SweepParameters { metric: metric.to_string(), keys, trials }, size: (width, 420) }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        match &self.content {
            Content::Lr { lrs, log_scale } => draw_lr(root, lrs, *log_scale),
            Content::Runs(runs) => draw_runs(root, runs),
            Content::Scores { what, sets, trivial } => draw_scores(root, what, sets, trivial.as_ref()),
            Content::SweepHistory { metric, higher_is_better, trials } => sweep::draw_history(root, metric, *higher_is_better, trials),
            Content::SweepParameters { metric, keys, trials } => sweep::draw_parameters(root, metric, keys, trials),
        }
    }

    /// The chart as SVG text.
    pub fn svg(&self) -> String {
        register_font();
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size).into_drawing_area();
            if let Err(e) = self.draw(&root).and_then(|_| root.present().map_err(|e| e.to_string())) {
                return format!("<pre>plot failed: {e}</pre>");
            }
        }
        out
    }

    /// The chart as PNG bytes, drawn in memory (what a notebook shows inline).
    pub fn png(&self) -> Result<Vec<u8>> {
        register_font();
        let (w, h) = self.size;
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, self.size).into_drawing_area();
            self.draw(&root).and_then(|_| root.present().map_err(|e| e.to_string())).map_err(|e| Error::Invalid(format!("plot failed: {e}")))?;
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        // Charts are mostly flat colour: adaptive filtering and the best compression make them
        // several times smaller (notebooks carry them base64-encoded).
        encoder.set_compression(png::Compression::Best);
        encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let encoded = encoder.write_header().and_then(|mut writer| writer.write_image_data(&rgb).and_then(|_| writer.finish()));
        encoded.map_err(|e| Error::Invalid(format!("PNG encoding failed: {e}")))?;
        Ok(out)
    }

    /// Writes the chart to an `.svg` or `.png` file, through a temporary file and a rename.
    pub fn save(&self, path: &Path) -> Result<()> {
        register_font();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let fail = |what: String| Error::Invalid(format!("{}: {what}", path.display()));
        match ext.as_str() {
            "svg" => atomic_write(path, self.svg().as_bytes()),
            "png" => atomic_write(path, &self.png()?),
            _ => Err(fail("a plot is written as .svg or .png".into())),
        }
    }

    /// Shows the chart inline in an evcxr notebook cell.
    #[cfg(feature = "evcxr")]
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT image/svg+xml\n{}\nEVCXR_END_CONTENT", self.svg());
    }
}

/// Writes the LR schedule plot of a recipe's [`LrTable`] to an `.svg` or `.png` file.
pub fn lr_schedule(lrs: &LrTable, path: &Path) -> Result<()> {
    Chart::lr(lrs).save(path)
}

/// Steps are whole numbers: fractional ticks of a short run get no label.
fn step_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 { format!("{v:.0}") } else { String::new() }
}

/// An exponential moving average, for smoothing a noisy loss.
fn smooth(points: &[(f64, f64)], alpha: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len());
    let mut avg = None;
    for &(x, y) in points {
        let a = avg.map_or(y, |a: f64| a + alpha * (y - a));
        avg = Some(a);
        out.push((x, a));
    }
    out
}

/// The last step any run logged or evaluated at (at least 1): both panels share this axis, so
/// a run folder without its training log (`log.jsonl`) still shows its evaluations.
fn last_step(runs: &[Curves]) -> f64 {
    runs.iter().flat_map(|r| r.loss.iter().chain(&r.dev).chain(&r.swa).map(|p| p.0)).fold(1.0, f64::max)
}

fn draw_runs<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[Curves]) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (left, right) = root.split_horizontally(root.dim_in_pixel().0 / 2);
    let n = runs.len();
    let max_step = last_step(runs);
    let max_loss = runs.iter().flat_map(|r| r.loss.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let max_loss = if max_loss > 0.0 { max_loss } else { 1.0 };
    let caption = if runs.iter().all(|r| r.loss.is_empty()) { "Training loss (no log.jsonl)" } else { "Training loss" };
    let mut builder = ChartBuilder::on(&left);
    let mut chart = builder
        .caption(caption, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max_step + 1.0, 0f64..max_loss * 1.05)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("optimizer step")
        .y_desc("loss per batch")
        .x_label_formatter(&step_label)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    for (i, run) in runs.iter().enumerate() {
        let c = colour(i, n);
        chart.draw_series(LineSeries::new(run.loss.clone(), c.mix(0.25).stroke_width(1))).map_err(e)?;
        chart
            .draw_series(LineSeries::new(smooth(&run.loss, 0.1), c.stroke_width(2)))
            .map_err(e)?
            .label(run.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;

    let metric = runs.first().map(|r| r.metric.clone()).unwrap_or_else(|| "rmse".into());
    let values: Vec<f64> = runs.iter().flat_map(|r| r.dev.iter().chain(&r.swa).map(|p| p.1)).filter(|v| v.is_finite()).collect();
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.1).max(1e-3);
    let mut builder = ChartBuilder::on(&right);
    let mut chart = builder
        .caption(
            if runs.iter().any(|r| !r.swa.is_empty()) { format!("Dev {metric} (dashed: averaged weights)") } else { format!("Dev {metric}") },
            ("sans-serif", 22),
        )
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max_step + 1.0, (lo - pad)..(hi + pad))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("optimizer steps done")
        .y_desc(format!("dev {metric}"))
        .x_label_formatter(&step_label)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    for (i, run) in runs.iter().enumerate() {
        let c = colour(i, n);
        chart.draw_series(LineSeries::new(run.dev.clone(), c.stroke_width(2))).map_err(e)?;
        chart.draw_series(run.dev.iter().map(|&p| Circle::new(p, 4, c.filled()))).map_err(e)?;
        if run.swa.len() > 1 {
            chart.draw_series(DashedLineSeries::new(run.swa.clone(), 6, 4, c.stroke_width(2))).map_err(e)?;
        }
        chart.draw_series(run.swa.iter().map(|&p| TriangleMarker::new(p, 5, c.filled()))).map_err(e)?;
    }
    Ok(())
}

/// The y range of a score chart: the values with a margin, never narrower than 2% of their
/// size, so that a flat result is not zoomed into apparent differences.
fn score_range(values: &[f64]) -> (f64, f64) {
    let (lo, hi) = values.iter().filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.15).max(0.02 * hi.abs().max(lo.abs())).max(1e-3);
    (lo - pad, hi + pad)
}


fn draw_scores<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, what: &str, sets: &[ScoreSet], trivial: Option<&(String, f64)>) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let names: Vec<String> = sets.iter().map(|s| s.name.clone()).collect();
    let values: Vec<f64> = sets.iter().flat_map(|s| s.best.iter().chain(&s.swa).copied()).chain(trivial.map(|t| t.1)).collect();
    let mut title = what.to_string();
    if let Some(first) = title.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let (lo, hi) = score_range(&values);
    let mut builder = ChartBuilder::on(root);
    let mut chart = builder
        .caption(format!("{title} per recipe: every run, mean ± sd (triangles: averaged weights)"), ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..names.len() as f64 - 0.5, lo..hi)
        .map_err(e)?;
    let label = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 { names.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len().max(1) * 2 + 1)
        .x_label_formatter(&label)
        .y_desc(what)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    if let Some((name, value)) = trivial {
        let grey = RGBColor(120, 120, 120);
        let right = names.len() as f64 - 0.5;
        chart.draw_series(DashedLineSeries::new(vec![(-0.5, *value), (right, *value)], 8, 5, grey.stroke_width(2))).map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(format!("{name}: {value:.4}"), (-0.45, *value), ("sans-serif", 13).into_font().color(&grey))))
            .map_err(e)?;
    }
    let n = names.len();
    for (i, s) in sets.iter().enumerate() {
        let c = colour(i, n);
        let x = i as f64;
        let spread = |k: usize, len: usize| (k as f64 - (len as f64 - 1.0) / 2.0) * 0.06;
        for (k, v) in s.best.iter().enumerate() {
            chart.draw_series(std::iter::once(Circle::new((x + spread(k, s.best.len()), *v), 4, c.filled()))).map_err(e)?;
        }
        for (k, v) in s.swa.iter().enumerate() {
            chart.draw_series(std::iter::once(TriangleMarker::new((x + spread(k, s.swa.len()) + 0.2, *v), 5, c.mix(0.6).filled()))).map_err(e)?;
        }
        if s.best.is_empty() {
            continue;
        }
        let (mean, sd) = crate::metrics::mean_std(&s.best);
        chart.draw_series(LineSeries::new(vec![(x - 0.25, mean), (x + 0.25, mean)], BLACK.stroke_width(2))).map_err(e)?;
        chart.draw_series(LineSeries::new(vec![(x, mean - sd), (x, mean + sd)], BLACK.stroke_width(1))).map_err(e)?;
    }
    Ok(())
}

/// Notebook display (the `evcxr` feature): an LR table shows as its plot.
#[cfg(feature = "evcxr")]
impl LrTable {
    pub fn evcxr_display(&self) {
        Chart::lr(self).evcxr_display();
    }
}

/// Notebook display (the `evcxr` feature): a group table shows as an HTML table.
#[cfg(feature = "evcxr")]
impl GroupTable {
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT", group_table_html(self));
    }
}

/// The per-group summary and every parameter as an HTML table.
pub fn group_table_html(table: &GroupTable) -> String {
    let mut h = String::from("<table><thead><tr><th>group</th><th>lr</th><th>tensors</th><th>parameters</th><th>no decay</th></tr></thead><tbody>");
    for s in table.summary() {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{:.3e}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.name, s.lr, s.tensors, s.parameters, s.no_decay_tensors
        ));
    }
    h.push_str("</tbody></table><details><summary>every parameter</summary><table><thead><tr><th>parameter</th><th>group</th><th>lr</th><th>weight decay</th></tr></thead><tbody>");
    for r in &table.rows {
        h.push_str(&format!("<tr><td><code>{}</code></td><td>{}</td><td>{:.3e}</td><td>{}</td></tr>", r.name, r.group, r.lr, r.weight_decay));
    }
    h.push_str("</tbody></table></details>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(loss: &[(f64, f64)], dev: &[(f64, f64)]) -> Curves {
        Curves { name: "r".into(), metric: "rmse".into(), loss: loss.to_vec(), dev: dev.to_vec(), swa: vec![] }
    }

    #[test]
    fn the_step_axis_covers_evaluations_of_a_run_without_its_training_log() {
        // A cross-validation folder kept for the record holds eval.jsonl but not log.jsonl.
        assert_eq!(last_step(&[run(&[], &[(25.0, 1.2), (200.0, 0.9)])]), 200.0);
        assert_eq!(last_step(&[run(&[(1.0, 2.0), (10.0, 1.0)], &[(5.0, 1.5)]), run(&[], &[(40.0, 1.0)])]), 40.0);
        assert_eq!(last_step(&[]), 1.0);
    }
}
