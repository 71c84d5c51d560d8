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

/// Renders `draw` into `path` (`.svg` or `.png`, `width`×`height`), through a temporary file.
pub(crate) fn render(path: &Path, size: (u32, u32), draw: impl Fn(&DrawingArea<SVGBackend, Shift>) -> std::result::Result<(), String>, draw_png: impl Fn(&DrawingArea<BitMapBackend, Shift>) -> std::result::Result<(), String>) -> Result<()> {
    register_font();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{stem}.tmp-{}.{ext}", std::process::id()));
    let fail = |what: String| Error::Invalid(format!("{}: {what}", path.display()));
    match ext.as_str() {
        "svg" => {
            let root = SVGBackend::new(&tmp, size).into_drawing_area();
            draw(&root).map_err(fail)?;
            root.present().map_err(|e| fail(e.to_string()))?;
        }
        "png" => {
            let root = BitMapBackend::new(&tmp, size).into_drawing_area();
            draw_png(&root).map_err(fail)?;
            root.present().map_err(|e| fail(e.to_string()))?;
        }
        _ => return Err(fail("a plot is written as .svg or .png".into())),
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
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
                .x_label_formatter(&|v| format!("{v:.0}"))
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

/// Writes the LR schedule plot of a recipe's [`LrTable`] to an `.svg` or `.png` file.
pub fn lr_schedule(lrs: &LrTable, path: &Path) -> Result<()> {
    render(path, (1000, 600), |root| draw_lr(root, lrs, false), |root| draw_lr(root, lrs, false))
}
