//! `tunelab plan` of scripts that print their results, and its time estimate.
mod common;

use std::process::{Command, Output};

fn tunelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tunelab")).args(args).current_dir(common::root()).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn script(dir: &std::path::Path, cv: bool) -> std::path::PathBuf {
    let fixture = |f: &str| common::fixture(f).display().to_string();
    let data = if cv {
        format!(r#"data(#{{ train: "{}", columns: #{{ text: "text", label: "score" }}, kind: "regression", cv: #{{ folds: 2 }} }})"#, fixture("vader-sample/train.tsv"))
    } else {
        format!(r#"data(#{{ train: "{}", dev: "{}", columns: #{{ text: "text", label: "score" }}, kind: "regression" }})"#, fixture("vader-sample/train.tsv"), fixture("vader-sample/dev.tsv"))
    };
    let text = format!(
        r#"let m = model("{model}", #{{ pooling: "pooler" }});
let r = recipe(#{{ lr: #{{ kind: "uniform", lr: 1e-3 }}, swa: #{{ start: 0.5 }}, evaluation: #{{ every: 2 }} }});
let t = training(#{{ epochs: 1, batch_size: 16, max_steps: 4, threads: 1, max_length: 32 }});
let run = train(m, {data}, r, t);
print(`best ${{run.best.metric}} ${{fmt(run.best.value, 4)}} at step ${{run.best.step}}`);
if run.cv != () {{
    print(`out of fold ${{fmt(run.cv.oof_score, 4)}} ± ${{fmt(run.cv.std, 4)}}`);
}} else {{
    print(`last ${{fmt(run.last.rmse, 4)}}, SWA ${{fmt(run.swa.rmse, 4)}}`);
}}
"#,
        model = fixture("tiny_bert"),
    );
    let path = dir.join(if cv { "cv.rhai" } else { "one.rhai" });
    std::fs::write(&path, text).unwrap();
    path
}

/// Issue 21, item 5: a script that prints `run.best.value` (with no `if !run.planned`) plans.
#[test]
fn a_script_that_prints_its_results_also_plans() {
    let root = tempfile::tempdir().unwrap();
    for cv in [false, true] {
        let path = script(root.path(), cv);
        let planned = ok(&tunelab(&["plan", path.to_str().unwrap()]));
        assert!(planned.contains("best rmse NaN at step 0"), "{planned}");
        assert_eq!(planned.contains("last NaN, SWA NaN"), !cv, "{planned}");
        assert_eq!(planned.contains("out of fold NaN"), cv, "{planned}");
        // And the same script trains and prints numbers.
        let runs = root.path().join("runs");
        let out = Command::new(env!("CARGO_BIN_EXE_tunelab")).args(["run", path.to_str().unwrap(), "--quiet"]).env("TUNELAB_RUNS", &runs).current_dir(common::root()).output().unwrap();
        let trained = ok(&out);
        assert!(trained.contains("best rmse ") && !trained.contains("best rmse NaN"), "{trained}");
    }
}

/// Issue 21, item 1: `plan --estimate` times a few steps and extrapolates (a CV counts its folds).
#[test]
fn plan_estimates_the_time_from_timed_steps() {
    let root = tempfile::tempdir().unwrap();
    let one = ok(&tunelab(&["plan", script(root.path(), false).to_str().unwrap(), "--estimate", "2"]));
    let line = one.lines().find(|l| l.starts_with("estimated time: ")).unwrap_or_else(|| panic!("{one}"));
    // 4 steps; evaluations at 2 and 4, the SWA weights' too at 4 (SWA starts at step 2).
    assert!(line.contains("per optimizer step × 4") && line.contains("per evaluation × 3"), "{line}");
    let seconds: f64 = line.split(" s per optimizer step").next().unwrap().rsplit('(').next().unwrap().parse().unwrap();
    assert!(seconds > 0.0 && seconds < 60.0, "{line}");
    let cv = ok(&tunelab(&["plan", script(root.path(), true).to_str().unwrap(), "--estimate", "2"]));
    assert!(cv.contains("for its 2 runs"), "{cv}");
}

/// A new user's second day: what `plan` must catch or say before any training is spent.
#[test]
fn plan_names_skipped_rows_and_refuses_a_metric_the_task_does_not_have() {
    let root = tempfile::tempdir().unwrap();
    let train = std::fs::read_to_string(common::fixture("vader-sample/train.tsv")).unwrap();
    let mut lines: Vec<&str> = train.lines().collect();
    lines.insert(3, "9999\tabc\tpositive\ta sentence whose score is not a number");
    let data = root.path().join("train.tsv");
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let write = |name: &str, extra: &str| {
        let text = format!(
            r#"let d = data(#{{ train: "{data}", dev: "{dev}", columns: #{{ text: "text", label: "score" }}, kind: "regression", skip_invalid: true }});
plan(model("{model}"), d, recipe(#{{ lr: #{{ kind: "uniform", lr: 1e-3 }}{extra} }}), training(#{{ max_steps: 4, max_length: 32 }}));
"#,
            data = data.display(),
            dev = common::fixture("vader-sample/dev.tsv").display(),
            model = common::fixture("tiny_bert").display(),
        );
        let path = root.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let planned = ok(&tunelab(&["plan", write("skip.rhai", "").to_str().unwrap()]));
    assert!(planned.contains(&format!("data.skip_invalid: 1 invalid row(s) of {} skipped", data.display())), "{planned}");

    let out = tunelab(&["plan", write("metric.rhai", r#", evaluation: #{ select_by: "accuracy" }"#).to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("recipe.evaluation.select_by: `accuracy` is not a metric of a regression task"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
