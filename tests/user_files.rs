//! tunelab deletes only what tunelab made, refuses before it creates, and needs no flag the
//! model already knows (issue 19). Each test below failed on the main of 2026-12-01.
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tunelab::data::TaskKind;
use tunelab::groups::LrLayout;
use tunelab::recipe::{Eval, Recipe};
use tunelab::spec::{Cv, Keep};
use tunelab::{DataSpec, RunSpec, TrainConfig};

fn spec() -> RunSpec {
    RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data: DataSpec::new(common::fixture("vader-sample/train.tsv"), common::fixture("vader-sample/dev.tsv"), "text", "score", TaskKind::Regression),
        recipe: Recipe { lr: LrLayout::Uniform { lr: 1e-3 }, evaluation: Eval { every: Some(4), ..Eval::default() }, ..Recipe::default() },
        training: TrainConfig { epochs: 1, batch_size: 32, max_steps: Some(8), threads: Some(1), max_length: 64, ..TrainConfig::default() },
    }
}

fn cv_spec(folds: usize) -> RunSpec {
    let mut s = spec();
    s.data.dev = None;
    s.data.cv = Some(Cv::new(folds, 1));
    s.training.max_steps = Some(2);
    s
}

fn write(dir: &Path, name: &str, spec: &RunSpec) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, spec.to_json()).unwrap();
    path
}

fn tunelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tunelab")).args(args).current_dir(common::root()).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure, got: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(1), "a clean error exit, not a crash");
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.insert(path.strip_prefix(dir).unwrap().join(""), Vec::new());
                stack.push(path);
            } else {
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// 1. `--force` never empties a folder that is not a tunelab run, and says which file it holds.
#[test]
fn force_refuses_a_folder_that_is_not_a_run() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = write(root.path(), "spec-in.json", &spec());
    let docs = root.path().join("docs");
    std::fs::create_dir_all(docs.join("sub")).unwrap();
    std::fs::write(docs.join("thesis.txt"), "three years of work").unwrap();
    std::fs::write(docs.join("sub/notes.md"), "notes").unwrap();
    let before = snapshot(&docs);
    let err = one_line_error(&tunelab(&["train", s(&spec_path), "--out", s(&docs), "--force", "--quiet"]));
    assert!(err.contains("thesis.txt") || err.contains("sub"), "names a file it holds: {err}");
    assert!(err.contains("nothing was deleted"), "{err}");
    assert_eq!(snapshot(&docs), before, "the folder is untouched");

    // A run folder with a file of the user's in it is not a run folder either.
    let run = root.path().join("run");
    ok(&tunelab(&["train", s(&spec_path), "--out", s(&run), "--quiet"]));
    std::fs::write(run.join("my-notes.txt"), "keep me").unwrap();
    let before = snapshot(&run);
    let err = one_line_error(&tunelab(&["train", s(&spec_path), "--out", s(&run), "--force", "--quiet"]));
    assert!(err.contains("my-notes.txt"), "{err}");
    assert_eq!(snapshot(&run), before);

    // A tunelab run folder (TensorBoard files included) is still emptied and retrained.
    std::fs::remove_file(run.join("my-notes.txt")).unwrap();
    ok(&tunelab(&["train", s(&spec_path), "--out", s(&run), "--force", "--quiet", "--tensorboard"]));
    ok(&tunelab(&["train", s(&spec_path), "--out", s(&run), "--force", "--quiet"]));
    assert!(run.join("best/model.safetensors").is_file());
}

/// A finished run whose policy kept no checkpoint (keep: models, as every fold and ablation run).
fn finished_models_run(root: &Path) -> PathBuf {
    let mut sp = spec();
    sp.training.keep = Some(Keep::Models);
    let spec_path = write(root, "models.json", &sp);
    let run = root.join("finished");
    ok(&tunelab(&["train", s(&spec_path), "--out", s(&run), "--quiet"]));
    assert!(!run.join("last").exists() && run.join("best").is_dir());
    run
}

/// 2. Resuming a finished run changes nothing, whatever it kept, edited spec or not, killed or not.
#[test]
fn resuming_a_finished_run_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let run = finished_models_run(root.path());
    let before = snapshot(&run);
    let out = tunelab(&["resume", s(&run), "--quiet"]);
    let stdout = ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("had already finished"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("run finished after 8 of 8 steps"), "{stdout}");
    assert_eq!(snapshot(&run), before, "byte-identical after resume");

    // Killed with SIGKILL at several instants of the resume: still byte-identical.
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80, 160, 320] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tunelab"))
            .args(["resume", s(&run), "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        assert_eq!(snapshot(&run), before, "byte-identical after a resume killed at {delay_ms} ms");
    }

    // An edited specification does not turn the finished results into a run of another one.
    let mut edited = RunSpec::from_file(&run.join("spec.json")).unwrap();
    edited.recipe.lr = LrLayout::Uniform { lr: 5e-3 };
    std::fs::write(run.join("spec.json"), edited.to_json()).unwrap();
    let before = snapshot(&run);
    ok(&tunelab(&["resume", s(&run), "--quiet"]));
    assert_eq!(snapshot(&run), before);
}

/// 2 (the other side): an unfinished run that never checkpointed still starts over.
#[test]
fn an_unfinished_run_without_a_checkpoint_restarts() {
    let root = tempfile::tempdir().unwrap();
    let run = finished_models_run(root.path());
    let mut metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    std::fs::remove_file(run.join("metrics.json")).unwrap();
    let resumed = tunelab(&["resume", s(&run), "--quiet"]);
    let out = ok(&resumed);
    assert!(out.contains("run finished after 8 of 8 steps"), "{out}");
    let said = String::from_utf8_lossy(&resumed.stderr);
    assert!(said.contains("holds no checkpoint (last/): the run starts over from step 0"), "said so: {said}");
    let again: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("metrics.json")).unwrap()).unwrap();
    metrics["wall_seconds"] = again["wall_seconds"].clone();
    assert_eq!(again["best"], metrics["best"], "retrained from step 0 to the same result");
}

/// 3, 4. A refused cross-validation leaves no folder behind; `folds: 0` is an error, not a panic.
#[test]
fn a_refused_cross_validation_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mut with_dev = cv_spec(3);
    with_dev.data.dev = Some(common::fixture("vader-sample/dev.tsv"));
    let mut missing_group = cv_spec(3);
    missing_group.data.cv.as_mut().unwrap().group_by = Some("author".into());
    let mut few_groups = cv_spec(3);
    few_groups.data.cv.as_mut().unwrap().group_by = Some("label".into());
    let cases: Vec<(&str, RunSpec, &str)> = vec![
        ("folds 0", cv_spec(0), "at least 2 folds"),
        ("folds 1", cv_spec(1), "at least 2 folds"),
        ("folds above the rows", cv_spec(100_000), "cannot fill"),
        ("a dev file", with_dev, "remove data.dev"),
        ("a missing group column", missing_group, "author"),
        ("fewer groups than folds", few_groups, "2 groups cannot fill 3 folds"),
    ];
    let out = root.path().join("cv");
    for (what, bad, expected) in cases {
        let path = write(root.path(), "cv.json", &bad);
        let err = one_line_error(&tunelab(&["train", s(&path), "--out", s(&out), "--quiet"]));
        assert!(err.contains(expected), "{what}: {err}");
        assert!(!out.exists(), "{what}: the refused cross-validation left {}", out.display());
    }
    // The corrected command into the same folder runs.
    let path = write(root.path(), "cv.json", &cv_spec(2));
    let stdout = ok(&tunelab(&["train", s(&path), "--out", s(&out), "--quiet"]));
    assert!(stdout.contains("out-of-fold"), "{stdout}");
}

/// 6. A shard that holds no fold says so in words.
#[test]
fn a_shard_without_folds_says_it_has_no_work() {
    let root = tempfile::tempdir().unwrap();
    let path = write(root.path(), "cv.json", &cv_spec(3));
    let out = root.path().join("cv");
    let stdout = ok(&tunelab(&["train", s(&path), "--out", s(&out), "--shard", "4/5", "--quiet"]));
    assert!(stdout.contains("shard 4/5 has no work: the cross-validation has 3 fold runs, and shards 0 to 2 of 5 run them"), "{stdout}");
}

fn ablation_script(dir: &Path, name: &str, train: &str, lr: f64, out: &Path) -> PathBuf {
    let fixture = |f: &str| common::fixture(f).display().to_string();
    let text = format!(
        r#"let m = model("{model}", #{{ pooling: "pooler" }});
let d = data(#{{ train: "{train}", dev: "{dev}", columns: #{{ text: "text", label: "score" }}, kind: "regression" }});
let t = training(#{{ epochs: 1, max_steps: 2, batch_size: 32, threads: 1, max_length: 32 }});
let recipes = [
    #{{ name: "a", recipe: recipe(#{{ lr: #{{ kind: "uniform", lr: {lr:e} }} }}) }},
    #{{ name: "b", recipe: recipe(#{{ lr: #{{ kind: "uniform", lr: {lr2:e} }} }}) }},
];
ablate(m, d, recipes, t, #{{ seeds: [1], out: "{out}" }});
"#,
        model = fixture("tiny_bert"),
        train = fixture(train),
        dev = fixture("vader-sample/dev.tsv"),
        lr2 = lr * 2.0,
        out = out.display()
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// 5. Shards of different ablations are never merged into one table (nor run into one folder).
#[test]
fn merge_refuses_shards_of_different_ablations() {
    let root = tempfile::tempdir().unwrap();
    let (one, other) = (root.path().join("one"), root.path().join("other"));
    let a = ablation_script(root.path(), "a.rhai", "vader-sample/train.tsv", 1e-3, &one);
    let b = ablation_script(root.path(), "b.rhai", "vader-sample/dev.tsv", 3e-3, &one);
    ok(&tunelab(&["run", s(&a), "--shard", "0/2", "--quiet"]));
    // The other script's shard into the same folder is refused before it runs anything.
    let err = one_line_error(&tunelab(&["run", s(&b), "--shard", "1/2", "--quiet"]));
    assert!(err.contains("different ablations") && err.contains("base.data.train"), "{err}");
    assert!(!one.join("results-1-of-2.jsonl").exists());
    // Its results made elsewhere and copied in: merge names what differs.
    let b_other = ablation_script(root.path(), "b2.rhai", "vader-sample/dev.tsv", 3e-3, &other);
    ok(&tunelab(&["run", s(&b_other), "--shard", "1/2", "--quiet"]));
    for f in ["results-1-of-2.jsonl", "shard-1-of-2.json"] {
        std::fs::copy(other.join(f), one.join(f)).unwrap();
    }
    let err = one_line_error(&tunelab(&["merge", s(&one)]));
    assert!(err.contains("different ablations") && err.contains("base.data.train") && err.contains("recipes.a.lr.lr"), "{err}");
    // The matching shard merges.
    std::fs::remove_file(one.join("results-1-of-2.jsonl")).unwrap();
    std::fs::remove_file(one.join("shard-1-of-2.json")).unwrap();
    ok(&tunelab(&["run", s(&a), "--shard", "1/2", "--quiet"]));
    let table = ok(&tunelab(&["merge", s(&one)]));
    assert!(table.contains("2 runs"), "{table}");
    // An ablation shard without jobs says so.
    let idle = ok(&tunelab(&["run", s(&a), "--shard", "3/4", "--quiet"]));
    assert!(idle.contains("shard 3/4 has no work: the ablation has 2 runs"), "{idle}");
}

/// Item 7: predict takes the columns the model was trained on; an unnamed label column that
/// does not fit is ignored with a note.
#[test]
fn predict_defaults_to_the_columns_the_model_was_trained_on() {
    let root = tempfile::tempdir().unwrap();
    let mut sp = spec();
    sp.data.columns.id = Some("id".into());
    let spec_path = write(root.path(), "spec-in.json", &sp);
    let run = root.path().join("run");
    ok(&tunelab(&["train", s(&spec_path), "--out", s(&run), "--quiet"]));
    let test = common::fixture("vader-sample/dev.tsv");
    let p = root.path().join("p.tsv");
    let stdout = ok(&tunelab(&["predict", s(&run.join("best")), s(&test), "--out", s(&p)]));
    assert!(stdout.contains("rmse"), "scored on `score`: {stdout}");
    let tsv = std::fs::read_to_string(&p).unwrap();
    assert!(tsv.lines().nth(1).unwrap().starts_with("9004\t"), "ids from the `id` column: {tsv}");

    // A model folder from before columns.json: `label` holds text, so it is ignored with a note.
    std::fs::remove_file(run.join("best/columns.json")).unwrap();
    let out = tunelab(&["predict", s(&run.join("best")), s(&test), "--out", s(&p)]);
    let stdout = ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("note:") && stderr.contains("column `label`") && stderr.contains("--label"), "{stderr}");
    assert!(!stdout.contains("rmse"), "{stdout}");
    // Named by the user, the same column is an error.
    let err = one_line_error(&tunelab(&["predict", s(&run.join("best")), s(&test), "--out", s(&p), "--label", "label"]));
    assert!(err.contains("`negative` is not a number") || err.contains("is not a number"), "{err}");
}

/// 8. Messages: a missing output folder is named; a NaN from a script names its key.
#[test]
fn a_missing_output_folder_and_a_nan_option_are_named() {
    let root = tempfile::tempdir().unwrap();
    let spec_path = write(root.path(), "spec-in.json", &spec());
    let run = root.path().join("run");
    ok(&tunelab(&["train", s(&spec_path), "--out", s(&run), "--quiet"]));
    let missing = root.path().join("nowhere/p.tsv");
    let err = one_line_error(&tunelab(&["predict", s(&run.join("best")), s(&common::fixture("vader-sample/dev.tsv")), "--out", s(&missing)]));
    assert!(err.contains(&format!("the folder {} does not exist", root.path().join("nowhere").display())), "{err}");
    assert!(!err.contains(".p.tsv.tmp"), "{err}");
    // An output named inside a model or run folder never replaces one of its files, and a
    // folder is not a file.
    let config = run.join("best/config.json");
    let before = std::fs::read(&config).unwrap();
    let err = one_line_error(&tunelab(&["predict", s(&run.join("best")), s(&common::fixture("vader-sample/dev.tsv")), "--out", s(&config)]));
    assert!(err.contains("a file of the model folder") && err.contains("choose another name"), "{err}");
    assert_eq!(std::fs::read(&config).unwrap(), before);
    let err = one_line_error(&tunelab(&["plot", s(&run), "--out", s(&run.join("metrics.json"))]));
    assert!(err.contains("a file of the run folder"), "{err}");
    let err = one_line_error(&tunelab(&["plot", s(&run), "--out", s(root.path())]));
    assert!(err.contains("a folder; name the file to write"), "{err}");

    for value in ["0.0 / 0.0", "1.0 / 0.0"] {
        let script = root.path().join("nan.rhai");
        std::fs::write(&script, format!("let r = recipe(#{{ evaluation: #{{ every: 4, min_delta: {value} }} }});\n")).unwrap();
        let err = one_line_error(&tunelab(&["run", s(&script)]));
        assert!(err.contains("`evaluation.min_delta`") && err.contains("is not a finite number"), "{err}");
    }
}

/// The review's cases: `resume` of a folder that is not a run, a cross-validation or an ablation
/// pointed at a folder of yours, `--force` on a folder holding only a specification, and two
/// recipes whose names give one run folder. Each is refused with nothing changed.
#[test]
fn folders_that_are_not_tunelab_runs_are_never_written() {
    let root = tempfile::tempdir().unwrap();
    // resume: a folder with a valid spec.json and files of yours.
    let archive = root.path().join("archive");
    std::fs::create_dir_all(archive.join("best")).unwrap();
    std::fs::write(archive.join("spec.json"), spec().to_json()).unwrap();
    std::fs::write(archive.join("best/README.md"), "mine").unwrap();
    std::fs::write(archive.join("notes.txt"), "mine").unwrap();
    std::fs::write(archive.join(".draft.old"), "mine").unwrap();
    let before = snapshot(&archive);
    let err = one_line_error(&tunelab(&["resume", s(&archive)]));
    assert!(err.contains("not a tunelab run folder") && err.contains("nothing was changed"), "{err}");
    assert_eq!(snapshot(&archive), before);

    // A cross-validation into a folder of yours (holding your cv.json and oof.tsv).
    let exp = root.path().join("exp");
    std::fs::create_dir_all(&exp).unwrap();
    let cv_path = write(&exp, "cv.json", &cv_spec(2));
    std::fs::write(exp.join("oof.tsv"), "mine").unwrap();
    let before = snapshot(&exp);
    let err = one_line_error(&tunelab(&["train", s(&cv_path), "--out", s(&exp), "--quiet"]));
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(snapshot(&exp), before);

    // A cross-validation run again into its own folder keeps its finished folds; resume refuses it.
    let cv = root.path().join("cv");
    ok(&tunelab(&["train", s(&cv_path), "--out", s(&cv), "--quiet"]));
    let folds = snapshot(&cv.join("fold-0"));
    ok(&tunelab(&["train", s(&cv_path), "--out", s(&cv), "--quiet"]));
    assert_eq!(snapshot(&cv.join("fold-0")), folds, "a finished fold is not trained again");
    let err = one_line_error(&tunelab(&["resume", s(&cv)]));
    assert!(err.contains("a cross-validation's folder"), "{err}");

    // --force on a folder that holds only a specification (yours?) or a recipe.json of notes.
    let spec_path = write(root.path(), "spec-in.json", &spec());
    for (name, content) in [("spec.json", spec().to_json()), ("recipe.json", "{\"my\": \"notes\"}".to_string())] {
        let mine = root.path().join(format!("mine-{name}"));
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(mine.join(name), &content).unwrap();
        let err = one_line_error(&tunelab(&["train", s(&spec_path), "--out", s(&mine), "--force", "--quiet"]));
        assert!(err.contains("not a tunelab run folder"), "{err}");
        assert_eq!(std::fs::read_to_string(mine.join(name)).unwrap(), content);
    }

    // An ablation into a folder of yours, and two recipes sharing a run folder.
    let adocs = root.path().join("adocs");
    std::fs::create_dir_all(&adocs).unwrap();
    std::fs::write(adocs.join("summary.csv"), "mine").unwrap();
    let script = ablation_script(root.path(), "a.rhai", "vader-sample/train.tsv", 1e-3, &adocs);
    let err = one_line_error(&tunelab(&["run", s(&script), "--quiet"]));
    assert!(err.contains("is not an ablation's folder"), "{err}");
    assert_eq!(std::fs::read_to_string(adocs.join("summary.csv")).unwrap(), "mine");
    let text = std::fs::read_to_string(&script).unwrap().replace("name: \"b\"", "name: \"A\"");
    std::fs::write(&script, text).unwrap();
    let err = one_line_error(&tunelab(&["run", s(&script), "--quiet"]));
    assert!(err.contains("would share the run folder"), "{err}");
}
