//! Plots with plotters: headless (the DejaVu Sans font ships inside the crate), SVG or PNG by
//! the file's extension.
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::recipe::LrTable;

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

/// The curves of one run, read from its directory.
#[derive(Debug, Clone)]
pub struct RunCurves {
    pub name: String,
    /// The metric plotted on the right (the one that selected the best weights).
    pub metric: String,
    /// `(step, loss)` for every optimizer step.
    pub loss: Vec<(f64, f64)>,
    /// `(steps done, metric)` at each evaluation of the trained weights.
    pub dev: Vec<(f64, f64)>,
    /// The same for the averaged (SWA/EMA) weights.
    pub swa: Vec<(f64, f64)>,
}

impl RunCurves {
    /// Reads `log.jsonl`, `eval.jsonl` and `metrics.json` of a run directory.
    pub fn read(dir: &Path) -> Result<Self> {
        let lines = |file: &str| -> Result<Vec<serde_json::Value>> {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            text.lines()
                .enumerate()
                .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::Data { path: path.clone(), line: Some(i + 1), what: e.to_string() }))
                .collect()
        };
        let metrics_path = dir.join("metrics.json");
        let metrics: serde_json::Value = std::fs::read_to_string(&metrics_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null);
        let metric = metrics["best"]["metric"].as_str().unwrap_or("rmse").to_string();
        let loss = lines("log.jsonl")?.iter().filter_map(|l| Some((l["step"].as_f64()?, l["loss"].as_f64()?))).collect();
        let evals = lines("eval.jsonl")?;
        let pick = |weights: &str| -> Vec<(f64, f64)> {
            evals
                .iter()
                .filter(|e| e["weights"] == weights)
                .filter_map(|e| Some((e["step"].as_f64()?, e["metrics"][metric.as_str()].as_f64()?)))
                .collect()
        };
        let (dev, swa) = (pick("model"), pick("swa"));
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(RunCurves { name, metric, loss, dev, swa })
    }
}

/// What a [`Chart`] shows.
#[derive(Debug, Clone)]
enum Content {
    Lr { lrs: LrTable, log_scale: bool },
    Runs(Vec<RunCurves>),
    Ablation(Vec<crate::ablation::Row>),
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
    pub fn runs(runs: &[RunCurves]) -> Self {
        Chart { content: Content::Runs(runs.to_vec()), size: (1200, 500) }
    }

    /// Reads run directories and charts them.
    pub fn run_dirs(dirs: &[impl AsRef<Path>]) -> Result<Self> {
        let runs = dirs.iter().map(|d| RunCurves::read(d.as_ref())).collect::<Result<Vec<_>>>()?;
        Ok(Chart::runs(&runs))
    }

    /// Every seed's score per recipe, with the mean and ± one standard deviation.
    pub fn ablation(rows: &[crate::ablation::Row]) -> Self {
        Chart { content: Content::Ablation(rows.to_vec()), size: (1000, 550) }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> std::result::Result<(), String> {
        match &self.content {
            Content::Lr { lrs, log_scale } => draw_lr(root, lrs, *log_scale),
            Content::Runs(runs) => draw_runs(root, runs),
            Content::Ablation(rows) => draw_ablation(root, rows),
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

    /// Writes the chart to an `.svg` or `.png` file, through a temporary file and a rename.
    pub fn save(&self, path: &Path) -> Result<()> {
        register_font();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = path.with_file_name(format!(".{stem}.tmp-{}.{ext}", std::process::id()));
        let fail = |what: String| Error::Invalid(format!("{}: {what}", path.display()));
        match ext.as_str() {
            "svg" => std::fs::write(&tmp, self.svg()).map_err(|e| Error::io(&tmp, e))?,
            "png" => {
                let root = BitMapBackend::new(&tmp, self.size).into_drawing_area();
                self.draw(&root).map_err(fail)?;
                root.present().map_err(|e| fail(e.to_string()))?;
            }
            _ => return Err(fail("a plot is written as .svg or .png".into())),
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
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

fn draw_runs<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[RunCurves]) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let (left, right) = root.split_horizontally(root.dim_in_pixel().0 / 2);
    let n = runs.len();
    let max_step = runs.iter().flat_map(|r| r.loss.iter().map(|p| p.0)).fold(1.0, f64::max);
    let max_loss = runs.iter().flat_map(|r| r.loss.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(1e-9, f64::max);
    let mut builder = ChartBuilder::on(&left);
    let mut chart = builder
        .caption("Training loss", ("sans-serif", 22))
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
        .caption(format!("Dev {metric} (dashed: averaged weights)"), ("sans-serif", 22))
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

fn draw_ablation<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, rows: &[crate::ablation::Row]) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let summaries = crate::ablation::summarize(rows);
    let names: Vec<String> = summaries.iter().map(|s| s.recipe.clone()).collect();
    let metric = summaries.first().map(|s| s.metric.clone()).unwrap_or_default();
    let values: Vec<f64> = rows.iter().map(|r| r.best).chain(rows.iter().filter_map(|r| r.swa)).collect();
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.15).max(1e-3);
    let mut builder = ChartBuilder::on(root);
    let mut chart = builder
        .caption(format!("Best dev {metric} per recipe: every seed, mean ± sd"), ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..names.len() as f64 - 0.5, (lo - pad)..(hi + pad))
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
        .y_desc(format!("best dev {metric}"))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    let n = names.len();
    for (i, s) in summaries.iter().enumerate() {
        let c = colour(i, n);
        let x = i as f64;
        let mine: Vec<&crate::ablation::Row> = rows.iter().filter(|r| r.recipe == s.recipe).collect();
        for (k, r) in mine.iter().enumerate() {
            let dx = (k as f64 - (mine.len() as f64 - 1.0) / 2.0) * 0.06;
            chart.draw_series(std::iter::once(Circle::new((x + dx, r.best), 4, c.filled()))).map_err(e)?;
            if let Some(swa) = r.swa {
                chart.draw_series(std::iter::once(TriangleMarker::new((x + dx + 0.2, swa), 5, c.mix(0.6).filled()))).map_err(e)?;
            }
        }
        chart.draw_series(LineSeries::new(vec![(x - 0.25, s.mean), (x + 0.25, s.mean)], BLACK.stroke_width(2))).map_err(e)?;
        chart.draw_series(LineSeries::new(vec![(x, s.mean - s.std), (x, s.mean + s.std)], BLACK.stroke_width(1))).map_err(e)?;
    }
    Ok(())
}
