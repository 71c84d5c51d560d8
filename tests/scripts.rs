//! The rhai layer and the CLI: every seed script in a quick mode, the plan, and the errors a
//! researcher meets.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use tunelab::script::{Mode, Script};

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
        let spec = tunelab::RunSpec::from_file(&dir.join("recipe.json")).unwrap();
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
    let spec = tunelab::RunSpec::from_file(&dir.join("recipe.json")).unwrap();
    let plan = std::env::set_current_dir(common::root()).map(|_| spec.plan().unwrap()).unwrap();
    assert_eq!(plan.lrs.lrs, table, "plan --lr-csv equals the library's table");
    let log: Vec<tunelab::train::StepLog> =
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
    assert!(err.starts_with(&format!("error: {file}:1:9: recipe `weight_decay`: invalid type: string \"lots\", expected f64")), "{err}");

    let err = case("let d = data(#{ train: \"no/such.tsv\", dev: \"no/such.tsv\", columns: #{ text: \"text\", label: \"score\" }, kind: \"regression\" });\nlet r = train(model(\"models/all-MiniLM-L6-v2\"), d, recipe(), training());\n");
    assert_eq!(err, format!("error: {file}:2:9: no/such.tsv: file not found\n"));
}

#[test]
fn set_accepts_only_declared_variables() {
    let runs = tempfile::tempdir().unwrap();
    let err = one_line_error(&tunelab(&["run", "scripts/full.rhai", "--set", "epochz=1"], runs.path()));
    assert!(err.contains("--set epochz: the script declares no variable `epochz`") && err.contains("epochs"), "{err}");
    let err = one_line_error(&tunelab(&["run", "scripts/full.rhai", "--set", "epochs"], runs.path()));
    assert_eq!(err, "error: --set epochs: expected NAME=VALUE\n");
}

#[test]
fn integers_are_accepted_wherever_a_number_is() {
    let source = "let lr = 1;\nlet r = recipe(#{ lr: #{ kind: \"llrd\", top_lr: lr, decay: 1, head_lr: 2 }, warmup: 50, weight_decay: 0 });\nr";
    let value = Script::from_source("ints.rhai", source).unwrap().eval(Mode::Run, &[]).unwrap();
    let recipe: tunelab::Recipe = value.cast();
    assert_eq!(recipe.lr, tunelab::groups::LrLayout::Llrd { top_lr: 1.0, decay: 1.0, head_lr: 2.0 });
    assert_eq!(recipe.warmup, tunelab::recipe::Warmup::Steps(50));
    let fraction = Script::from_source("f.rhai", "recipe(#{ warmup: 0.1, swa: #{ start: 40 } })").unwrap().eval(Mode::Run, &[]).unwrap();
    let recipe: tunelab::Recipe = fraction.cast();
    assert_eq!(recipe.warmup, tunelab::recipe::Warmup::Fraction(0.1));
    assert_eq!(recipe.swa.unwrap().start, tunelab::techniques::swa::At::Step(40));
}
