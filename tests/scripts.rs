//! The rhai layer and the CLI: every seed script in a quick mode, the plan, and the errors a
//! researcher meets.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use tunelab::script::{Script, ScriptSettings};

const QUICK: [&str; 8] = ["--set", "train_limit=96", "--set", "dev_limit=24", "--set", "max_steps=3", "--quiet", "--set"];

fn tunelab(args: &[&str], runs: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tunelab")).args(args).current_dir(common::root()).env("TUNELAB_RUNS", runs).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure, got: {}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn every_seed_script_runs_in_quick_mode() {
    common::minilm_dir();
    let runs = tempfile::tempdir().unwrap();
    for name in ["baseline", "llrd", "grouped_llrd", "warmup", "reinit", "swa", "full"] {
        let script = format!("scripts/{name}.rhai");
        let mut args = vec!["run", script.as_str()];
        args.extend_from_slice(&QUICK);
        args.push("seed=7");
        let stdout = ok(&tunelab(&args, runs.path()));
        assert!(stdout.contains("best dev RMSE"), "{name}: {stdout}");
        let dir = std::fs::read_dir(runs.path()).unwrap().flatten().map(|e| e.path()).find(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with(&format!("{name}-"))
        });
        let dir = dir.unwrap_or_else(|| panic!("{name}: no run directory"));
        let spec = tunelab::RunSpec::from_file(&dir.join("spec.json")).unwrap();
        assert_eq!((spec.training.seed, spec.training.max_steps, spec.data.train_limit), (7, Some(3), Some(96)), "{name}: --set reached the run");
        let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
        assert_eq!(metrics["steps"], 3, "{name}");
        assert!(dir.join("best/model.safetensors").is_file(), "{name}");
        let png = std::fs::read(dir.join("curves.png")).unwrap_or_else(|_| panic!("{name}: no curves.png"));
        assert_eq!(&png[..4], b"\x89PNG", "{name}");
    }
}

#[test]
fn the_ablation_script_writes_one_row_per_run_and_a_summary() {
    common::minilm_dir();
    let runs = tempfile::tempdir().unwrap();
    let out = runs.path().join("ablation");
    let set_out = format!("out=\"{}\"", out.display());
    let mut args = vec!["run", "scripts/ablate.rhai"];
    args.extend_from_slice(&QUICK[..6]);
    args.extend(["--quiet", "--set", "seeds=[3, 4]", "--set", &set_out, "--shard", "1/2"]);
    ok(&tunelab(&args, runs.path()));
    let mut rest = args.clone();
    let at = rest.iter().position(|a| *a == "1/2").unwrap();
    rest[at] = "0/2";
    ok(&tunelab(&rest, runs.path()));
    let merged = ok(&tunelab(&["merge", out.to_str().unwrap()], runs.path()));
    assert!(merged.contains("14 runs"), "{merged}");
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let rows: Vec<&str> = summary.lines().collect();
    assert_eq!(rows.len(), 1 + 7, "{summary}");
    assert!(rows[1].starts_with("baseline,rmse,2,"), "{summary}");
    assert!(rows[7].starts_with("grouped LLRD,rmse,2,"), "{summary}");
}

#[test]
fn the_plan_equals_the_library_table_and_the_run_log() {
    common::minilm_dir();
    let runs = tempfile::tempdir().unwrap();
    let csv = runs.path().join("lr.csv");
    let plot = runs.path().join("lr.png");
    let mut args = vec!["plan", "scripts/full.rhai", "--lr-csv", csv.to_str().unwrap(), "--plot", plot.to_str().unwrap()];
    let sets = ["--set", "train_limit=192", "--set", "dev_limit=16", "--set", "max_steps=6"];
    args.extend_from_slice(&sets);
    let stdout = ok(&tunelab(&args, runs.path()));
    assert!(stdout.contains("6 optimizer steps; warm-up ends at step 1"), "{stdout}");
    assert!(std::fs::metadata(&plot).unwrap().len() > 10_000, "a real PNG");
    let table: Vec<Vec<f64>> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(table.len(), 6);

    let mut run_args = vec!["run", "scripts/full.rhai", "--quiet"];
    run_args.extend_from_slice(&sets);
    ok(&tunelab(&run_args, runs.path()));
    let dir = std::fs::read_dir(runs.path()).unwrap().flatten().map(|e| e.path()).find(|p| p.is_dir()).unwrap();
    let spec = tunelab::RunSpec::from_file(&dir.join("spec.json")).unwrap();
    let plan = std::env::set_current_dir(common::root()).map(|_| spec.plan().unwrap()).unwrap();
    assert_eq!(plan.lrs.lrs, table, "plan --lr-csv equals the library's table");
    let log: Vec<tunelab::run_dir::StepLog> =
        std::fs::read_to_string(dir.join("log.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for entry in &log {
        let lrs: Vec<f64> = entry.lr.values().copied().collect();
        assert_eq!(lrs, table[entry.step], "the run used the planned LRs at step {}", entry.step);
    }
}

#[test]
fn script_errors_name_the_script_the_line_and_the_column() {
    let runs = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let case = |source: &str| -> String {
        let path = dir.path().join("bad.rhai");
        std::fs::write(&path, source).unwrap();
        one_line_error(&tunelab(&["run", path.to_str().unwrap()], runs.path()))
    };
    let file = dir.path().join("bad.rhai").display().to_string();

    let err = case("let x = 1;\nlet r = recipe(#{ lr: 1e-4 ;\n");
    assert!(err.starts_with(&format!("error: {file}:2:")), "{err}");

    let err = case("let x = 1;\nlet r = recpie(#{});\n");
    assert_eq!(err, format!("error: {file}:2:9: no function recpie (map)\n"));

    let err = case("let r = recipe(#{ warmpu: 10 });\n");
    assert!(err.starts_with(&format!("error: {file}:1:9: recipe")) && err.contains("unknown field `warmpu`"), "{err}");

    let err = case("let r = recipe(#{ weight_decay: \"lots\" });\n");
    assert!(err.starts_with(&format!("error: {file}:1:9: recipe `weight_decay`: invalid type: string \"lots\", expected a number")), "{err}");

    let err = case("let d = data(#{ train: \"no/such.tsv\", dev: \"no/such.tsv\", columns: #{ text: \"text\", label: \"score\" }, kind: \"regression\" });\nlet r = train(model(\"models/all-MiniLM-L6-v2\"), d, recipe(), training());\n");
    assert_eq!(err, format!("error: {file}:2:9: no/such.tsv: file not found\n"));
}

#[test]
fn set_accepts_only_declared_variables() {
    let runs = tempfile::tempdir().unwrap();
    let err = one_line_error(&tunelab(&["run", "scripts/full.rhai", "--set", "epochz=1"], runs.path()));
    assert!(err.contains("--set epochz: the script has no parameter `epochz`") && err.contains("epochs"), "{err}");
    let err = one_line_error(&tunelab(&["run", "scripts/full.rhai", "--set", "epochs"], runs.path()));
    assert_eq!(err, "error: --set epochs: expected NAME=VALUE\n");
}

#[test]
fn integers_are_accepted_wherever_a_number_is() {
    let source = "let lr = 1;\nlet r = recipe(#{ lr: #{ kind: \"llrd\", top_lr: lr, decay: 1, head_lr: 2 }, warmup: 50, weight_decay: 0 });\nr";
    let value = Script::from_source("ints.rhai", source).unwrap().run(&[], &ScriptSettings::plan()).unwrap().value;
    let recipe: tunelab::Recipe = value.cast();
    assert_eq!(recipe.lr, tunelab::groups::LrLayout::Llrd { top_lr: 1.0, decay: 1.0, head_lr: 2.0 });
    assert_eq!(recipe.warmup, tunelab::recipe::Warmup::Steps(50));
    let fraction = Script::from_source("f.rhai", "recipe(#{ warmup: 0.1, swa: #{ start: 40 } })").unwrap().run(&[], &ScriptSettings::plan()).unwrap().value;
    let recipe: tunelab::Recipe = fraction.cast();
    assert_eq!(recipe.warmup, tunelab::recipe::Warmup::Fraction(0.1));
    assert_eq!(recipe.swa.unwrap().start, tunelab::techniques::swa::At::Step(40));
}

#[test]
fn set_takes_any_rhai_literal_and_rejects_what_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.rhai");
    std::fs::write(&path, "let name = \"x\"; let lr = 1e-4; let seeds = [1];\nlet r = recipe();\n`${name}|${lr}|${seeds.len()}`").unwrap();
    let script = Script::from_file(&path).unwrap();
    assert_eq!(script.parameters().keys().collect::<Vec<_>>(), ["lr", "name", "seeds"], "computed lets are not parameters");
    let run = |sets: &[(&str, &str)]| {
        let sets: Vec<(String, String)> = sets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        script.run(&sets, &ScriptSettings::plan()).map(|v| v.value.into_string().unwrap())
    };
    // Several declarations on one line, a value with `;` in it: the parsed script is changed, not its text.
    assert_eq!(run(&[("name", "\"a;b\""), ("seeds", "[1, 2, 3]")]).unwrap(), "a;b|0.0001|3");
    for bad in ["1e400", "[1, 2", "unquoted", "recipe()"] {
        let err = run(&[("lr", bad)]).unwrap_err().to_string();
        assert!(err.starts_with(&format!("--set lr={bad}: ")) && err.contains("rhai literal"), "{bad}: {err}");
    }
}

#[test]
fn endless_loops_and_absurd_nesting_hit_a_named_limit() {
    let runs = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let looping = dir.path().join("loop.rhai");
    std::fs::write(&looping, "let x = 0;\nloop { x += 1; }\n").unwrap();
    let err = one_line_error(&tunelab(&["run", looping.to_str().unwrap(), "--max-operations", "10000"], runs.path()));
    assert!(err.contains("loop.rhai:2:") && err.contains("more than 10000 operations") && err.contains("--max-operations"), "{err}");
    let nested = dir.path().join("nested.rhai");
    std::fs::write(&nested, format!("let x = {}1{};\n", "[".repeat(10_000), "]".repeat(10_000))).unwrap();
    let err = one_line_error(&tunelab(&["run", nested.to_str().unwrap()], runs.path()));
    assert!(err.contains("nested too deeply"), "{err}");
}

#[test]
fn shard_and_plot_runs_refuse_to_do_nothing_silently() {
    let runs = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.rhai");
    std::fs::write(&plain, "let x = 1;\nx\n").unwrap();
    let err = one_line_error(&tunelab(&["run", plain.to_str().unwrap(), "--shard", "1/2"], runs.path()));
    assert!(err.contains("--shard: the script runs no ablation, cross-validation or sweep"), "{err}");
    let empty = dir.path().join("empty.rhai");
    std::fs::write(&empty, "plot_runs([], \"x.png\");\n").unwrap();
    let err = one_line_error(&tunelab(&["run", empty.to_str().unwrap()], runs.path()));
    assert!(err.contains("empty.rhai:1:1: plot_runs(.., \"x.png\"): the list of runs is empty"), "{err}");
}

#[test]
fn the_cross_validation_script_writes_out_of_fold_predictions() {
    common::minilm_dir();
    let runs = tempfile::tempdir().unwrap();
    let stdout = ok(&tunelab(&["run", "scripts/cv.rhai", "--quiet", "--set", "train_limit=60", "--set", "folds=2", "--set", "max_steps=2"], runs.path()));
    assert!(stdout.contains("out-of-fold rmse"), "{stdout}");
    let dir = std::fs::read_dir(runs.path()).unwrap().flatten().map(|e| e.path()).find(|p| p.file_name().unwrap().to_string_lossy().starts_with("cv-")).unwrap();
    let oof = std::fs::read_to_string(dir.join("oof.tsv")).unwrap();
    assert_eq!(oof.lines().count(), 1 + 60);
    assert!(oof.starts_with("id\tlabel\tprediction\n"));
    let result: tunelab::cv::CvResult = serde_json::from_str(&std::fs::read_to_string(dir.join("cv.json")).unwrap()).unwrap();
    assert_eq!(result.fold_scores.len(), 2);
}

#[test]
fn planning_an_ablation_names_every_run_and_asks_which_to_plot() {
    common::minilm_dir();
    let runs = tempfile::tempdir().unwrap();
    let csv = runs.path().join("lr.csv");
    let base = ["plan", "scripts/ablate.rhai", "--set", "train_limit=64", "--set", "max_steps=4", "--lr-csv", csv.to_str().unwrap()];
    let err = one_line_error(&tunelab(&base, runs.path()));
    assert!(err.contains("the script plans 7 runs") && err.contains("2 `+ LLRD`") && err.contains("--run"), "{err}");
    let mut chosen = base.to_vec();
    chosen.extend(["--run", "+ LLRD"]);
    let stdout = ok(&tunelab(&chosen, runs.path()));
    assert!(stdout.contains("== planned run 7 of 7") && stdout.contains("run `grouped LLRD`"), "{stdout}");
    assert!(stdout.contains("LR table of run `+ LLRD` written"), "{stdout}");
    let header = std::fs::read_to_string(&csv).unwrap().lines().next().unwrap().to_string();
    assert!(header.starts_with("step,embeddings,layer.0"), "{header}");
}
