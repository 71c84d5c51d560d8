//! Mime bundles: how a cell's value, and what its calls produced, show in a notebook.
//!
//! A plan shows as its group table (HTML) and its LR chart; a run as its summary and its
//! curves; a chart as PNG and SVG; every bundle has `text/plain` for frontends without the
//! richer types. Charts are drawn here, on the session's thread, never on the sockets' reactor.
use base64::Engine as _;
use rhai::Dynamic;
use serde_json::{Map, Value};

use crate::cv::CvOutcome;
use crate::plot::{Chart, group_table_html};
use crate::recipe::{LrTable, Recipe};
use crate::run::Run;
use crate::script::{AblationResult, ScriptValue};
use crate::spec::{DataSpec, Plan, TrainConfig};

/// `mime type → data`, as `display_data` and `execute_result` carry it.
pub type Bundle = Map<String, Value>;

fn bundle(pairs: impl IntoIterator<Item = (&'static str, String)>) -> Bundle {
    pairs.into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect()
}

/// The bundle of a cell's last value; `None` for `()` (nothing to show). `type_name` is the
/// value's type as scripts know it, shown for tunelab's opaque values (a model, a run).
pub fn value(value: &Dynamic, type_name: &str) -> Option<Bundle> {
    if value.is_unit() {
        return None;
    }
    let text = if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        s.to_string()
    } else if let Some(r) = value.read_lock::<Recipe>() {
        pretty(&*r)
    } else if let Some(t) = value.read_lock::<TrainConfig>() {
        pretty(&*t)
    } else if let Some(d) = value.read_lock::<DataSpec>() {
        pretty(&*d)
    } else if value.type_name().contains("::") {
        format!("<{type_name}>")
    } else {
        value.to_string()
    };
    Some(bundle([("text/plain", text)]))
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// A training's live progress: the line the logs show, and an HTML table with every group's LR.
pub fn progress(p: &crate::progress::Progress) -> Bundle {
    let state = match (p.done, p.step >= p.total) {
        (true, true) => "done",
        (true, false) => "stopped",
        (false, _) => "training",
    };
    let lrs: String = p.lrs.iter().map(|(g, lr)| format!("<tr><td>{}</td><td>{lr:.3e}</td></tr>", escape(g))).collect();
    let width = 100.0 * p.step as f64 / p.total.max(1) as f64;
    let html = format!(
        "<div><b>{state}</b>: {}<div style=\"background:#eee;width:320px;height:8px\"><div style=\"background:#1f77b4;width:{width:.1}%;height:8px\"></div></div>\
         <table><tr><th>group</th><th>LR</th></tr>{lrs}</table></div>",
        escape(&p.to_string())
    );
    let lr_text: Vec<String> = p.lrs.iter().map(|(g, lr)| format!("{g} {lr:.2e}")).collect();
    bundle([("text/plain", format!("{state}: {p}; LR {}", lr_text.join(", "))), ("text/html", html)])
}

/// A chart as PNG (base64) and SVG, with a line of text.
pub fn chart(chart: &Chart, caption: &str) -> Bundle {
    let mut b = bundle([("text/plain", caption.to_string()), ("image/svg+xml", chart.svg())]);
    match chart.png() {
        Ok(png) => {
            b.insert("image/png".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(png)));
        }
        Err(e) => {
            b.insert("text/plain".into(), Value::String(format!("{caption} (no PNG: {e})")));
        }
    }
    b
}

/// A plan: the group table and the schedule summary (HTML and text), then the LR chart.
pub fn plan(plan: &Plan) -> Vec<Bundle> {
    let mut html = format!(
        "<p><b>run <code>{}</code></b>: {} training examples, {} optimizer steps</p>",
        escape(&plan.name),
        plan.train_examples,
        plan.total_steps
    );
    for w in &plan.warnings {
        html.push_str(&format!("<p style=\"color:#b45309\">warning: {}</p>", escape(w)));
    }
    html.push_str(&group_table_html(&plan.table));
    html.push_str(&lr_table_html(&plan.lrs));
    vec![
        bundle([("text/plain", plan.to_string()), ("text/html", html)]),
        chart(&Chart::lr(&plan.lrs), &format!("LR schedule of run `{}` ({} steps)", plan.name, plan.total_steps)),
    ]
}

/// The schedule summary as HTML: the warm-up end, the SWA start, each group's first, peak and
/// last LR.
pub fn lr_table_html(lrs: &LrTable) -> String {
    let mut h = format!("<p>{} optimizer steps; warm-up ends at step {}", lrs.lrs.len(), lrs.warmup_end);
    if let Some(s) = lrs.swa_start {
        h.push_str(&format!("; SWA starts at step {s}"));
    }
    h.push_str("</p><table><thead><tr><th>group</th><th>first</th><th>peak</th><th>last</th></tr></thead><tbody>");
    for (g, name) in lrs.groups.iter().enumerate() {
        let col = lrs.column(g);
        let peak = col.iter().cloned().fold(0.0, f64::max);
        let (first, last) = (col.first().copied().unwrap_or(0.0), col.last().copied().unwrap_or(0.0));
        h.push_str(&format!("<tr><td>{}</td><td>{first:.3e}</td><td>{peak:.3e}</td><td>{last:.3e}</td></tr>", escape(name)));
    }
    h.push_str("</tbody></table>");
    h
}

/// A trained (or stopped) run: its summary, then its curves.
pub fn run(run: &Run) -> Vec<Bundle> {
    let m = &run.metrics;
    let mut text = if m.finished {
        format!("run finished after {} of {} steps: {}", m.steps, m.total_steps, run.dir.display())
    } else {
        let how = if run.dir.join("last").is_dir() { "resumable: resume(run) continues it" } else { "no checkpoint kept (training.keep): resume(run) starts it over" };
        format!("run stopped after {} of {} steps ({how}): {}", m.steps, m.total_steps, run.dir.display())
    };
    if let Some(best) = &m.best {
        text.push_str(&format!("\nbest dev {} {:.4} at step {}", best.metric, best.value, best.step));
        if let Some(swa) = m.swa.as_ref().and_then(|s| s.get(&best.metric)) {
            text.push_str(&format!("\nSWA weights: dev {} {swa:.4}", best.metric));
        }
    }
    text.push_str(&format!("\n{:.1} training examples/s, {:.0} s in all", m.train_samples_per_second, m.wall_seconds));
    for w in &m.warnings {
        text.push_str(&format!("\nwarning: {w}"));
    }
    let mut out = vec![bundle([("text/plain", text)])];
    if let Ok(curves) = Chart::run_dirs(&[&run.dir]) {
        out.push(chart(&curves, &format!("curves of {}", run.dir.display())));
    }
    out
}

/// A cross-validation: its result, or which folds remain.
pub fn cv(cv: &CvOutcome) -> Bundle {
    let folds: Vec<String> = cv.folds_run.iter().map(|k| k.to_string()).collect();
    let mut text = format!("cross-validation {}: ran folds {}\n", cv.dir.display(), folds.join(", "));
    match &cv.result {
        Some(result) => text.push_str(&result.to_string()),
        None => text.push_str(&format!("other folds are still to run; `tunelab merge {}` once they are", cv.dir.display())),
    }
    bundle([("text/plain", text)])
}

/// An ablation: its table (and the chart it wrote, when it ran every job).
pub fn ablation(a: &AblationResult) -> Vec<Bundle> {
    let table = crate::ablation::table(&crate::ablation::summarize_examples(&a.out, &a.rows));
    let mut out = vec![bundle([("text/plain", table.clone()), ("text/html", format!("<pre>{}</pre>", escape(&table)))])];
    out.extend(png_file(&a.out.join("ablation.png")));
    out
}

/// A PNG file the call wrote, shown as an image (nothing if it is not there).
fn png_file(path: &std::path::Path) -> Option<Bundle> {
    let png = std::fs::read(path).ok()?;
    let mut b = bundle([("text/plain", format!("{}", path.display()))]);
    b.insert("image/png".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(png)));
    Some(b)
}

/// A sweep: its leaderboard and its two charts.
pub fn sweep(board: &crate::search::Leaderboard) -> Vec<Bundle> {
    let table = board.to_string();
    let mut out = vec![bundle([("text/plain", table.clone()), ("text/html", format!("<pre>{}</pre>", escape(&table)))])];
    out.extend(["history.png", "parameters.png"].iter().filter_map(|name| png_file(&board.out.join(name))));
    out
}

/// Everything a cell's calls produced, in the order: plans, runs, cross-validations, ablations,
/// sweeps.
pub fn recorded(v: &ScriptValue) -> Vec<Bundle> {
    let mut out: Vec<Bundle> = v.plans.iter().flat_map(plan).collect();
    out.extend(v.runs.iter().flat_map(run));
    out.extend(v.cvs.iter().map(cv));
    out.extend(v.ablations.iter().flat_map(ablation));
    out.extend(v.sweeps.iter().flat_map(sweep));
    out
}

/// Text made safe inside HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_show_as_text_and_unit_shows_nothing() {
        assert!(value(&Dynamic::UNIT, "()").is_none());
        assert_eq!(value(&Dynamic::from(2_i64), "i64").unwrap()["text/plain"], "2");
        assert_eq!(value(&Dynamic::from("a table"), "string").unwrap()["text/plain"], "a table");
        let recipe = value(&Dynamic::from(Recipe::default()), "Recipe").unwrap();
        assert!(recipe["text/plain"].as_str().unwrap().contains("\"lr\""), "{recipe:?}");
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
