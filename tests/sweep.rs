//! Sweeps on the tiny BERT: the grid covers its points once, samplers are deterministic under a
//! seed, a pruned trial stops at its rung with its partial curve kept, claims survive a worker
//! killed with SIGKILL (its trial runs again once; finished trials never), two workers sharing a
//! folder never run one trial twice, a finished sweep run again does nothing, and bad sweeps are
//! refused before anything is written.
mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use indexmap::IndexMap;
use serde_json::{Value, json};
use tunelab::recipe::{Eval, Recipe, Warmup};
use tunelab::run::RunControl;
use tunelab::search::{Distribution, Sampler, Space, SuccessiveHalving, Sweep, Trial, TrialState};
use tunelab::{DataSpec, RunSpec, TrainConfig};

/// 240 sentences, batches of 16, 2 epochs: 30 optimizer steps, evaluated every 5.
fn base() -> RunSpec {
    RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Mean,
        head: Default::default(),
        data: DataSpec::new(common::fixture("vader-sample/train.tsv"), common::fixture("vader-sample/dev.tsv"), "text", "score", tunelab::data::TaskKind::Regression),
        recipe: Recipe {
            lr: tunelab::groups::LrLayout::Llrd { top_lr: 1e-3, decay: 0.8, head_lr: 2e-3 },
            warmup: Warmup::Steps(3),
            evaluation: Eval { every: Some(5), ..Eval::default() },
            ..Recipe::default()
        },
        training: TrainConfig { epochs: 2, batch_size: 16, seed: 3, threads: Some(1), max_length: 64, ..TrainConfig::default() },
    }
}

fn space(entries: &[(&str, Distribution)]) -> Space {
    Space(entries.iter().map(|(k, d)| (k.to_string(), d.clone())).collect::<IndexMap<_, _>>())
}

fn choice(values: &[Value]) -> Distribution {
    Distribution::Choice { values: values.to_vec() }
}

fn sweep(space: Space, sampler: Sampler, trials: Option<usize>, out: &Path) -> Sweep {
    Sweep { space, sampler, trials, seed: 5, pruner: None, startup: 3, out: out.to_path_buf() }
}

fn quiet() -> RunControl {
    RunControl { quiet: true, ..RunControl::default() }
}

fn trial_files(out: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("trial-") && p.extension().is_some_and(|e| e == "json"))
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// The optimizer steps a trial's run folder logged.
fn logged_steps(out: &Path, number: usize) -> Vec<usize> {
    let log = std::fs::read_to_string(out.join(format!("trial-{number:04}/log.jsonl"))).unwrap();
    log.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["step"].as_u64().unwrap() as usize).collect()
}

#[test]
fn a_grid_covers_its_points_once_and_a_finished_sweep_run_again_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid");
    let space = space(&[("recipe.lr.top_lr", choice(&[json!(1e-3), json!(3e-3)])), ("recipe.reinit.top_layers", Distribution::Int { low: 0, high: 1 })]);
    let s = sweep(space.clone(), Sampler::Grid, None, &out);
    let trials = s.run(&base(), None, &quiet()).unwrap();
    assert_eq!(trials.len(), 4);
    let seen: BTreeSet<String> = trials.iter().map(|t| serde_json::to_string(&t.params).unwrap()).collect();
    let grid: BTreeSet<String> = space.grid().unwrap().iter().map(|p| serde_json::to_string(p).unwrap()).collect();
    assert_eq!(seen, grid, "every grid point once");
    for t in &trials {
        assert_eq!(t.state, TrialState::Complete);
        assert_eq!(t.steps, 30);
        assert!(t.score.unwrap().is_finite());
        // The run trained what the trial says: its spec.json holds the trial's values.
        let spec = RunSpec::from_file(&out.join(format!("trial-{:04}/spec.json", t.number))).unwrap();
        let json: Value = serde_json::from_str(&spec.to_json()).unwrap();
        assert_eq!(json["recipe"]["lr"]["top_lr"], t.params["recipe.lr.top_lr"]);
        assert_eq!(json["recipe"]["reinit"]["top_layers"], t.params["recipe.reinit.top_layers"]);
        // Its score is the run's best dev score; its weights are not kept.
        let metrics: Value = serde_json::from_str(&std::fs::read_to_string(out.join(format!("trial-{:04}/metrics.json", t.number))).unwrap()).unwrap();
        assert_eq!(metrics["best"]["value"].as_f64(), t.score);
        assert!(!out.join(format!("trial-{:04}/best", t.number)).exists());
    }
    // Run again: nothing runs, no record changes.
    let before = trial_files(&out);
    let again = s.run(&base(), None, &quiet()).unwrap();
    assert_eq!(again, trials);
    assert_eq!(trial_files(&out), before);
    // The report: the leaderboard best first, the best trial's full specification, the charts.
    let board = tunelab::search::report(&out).unwrap();
    let scores: Vec<f64> = board.trials.iter().map(|t| t.score.unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] <= w[1]), "{scores:?}");
    let best = RunSpec::from_file(&out.join("best/spec.json")).unwrap();
    assert_eq!(Some(&best), board.best.as_ref());
    let expected = space.apply(&base(), &board.trials[0].params).unwrap();
    assert_eq!(best.recipe, expected.recipe);
    let csv = std::fs::read_to_string(out.join("leaderboard.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.lines().next().unwrap().ends_with("recipe.lr.top_lr,recipe.reinit.top_layers"), "{csv}");
    for png in ["history.png", "parameters.png"] {
        assert!(std::fs::metadata(out.join(png)).unwrap().len() > 1000, "{png}");
    }
    // The same folder with another sweep is refused, naming what differs.
    let other = sweep(space.clone(), Sampler::Grid, Some(2), &out);
    let err = other.run(&base(), None, &quiet()).unwrap_err().to_string();
    assert!(err.contains("another sweep") && err.contains("trials"), "{err}");
}

#[test]
fn random_and_tpe_sweeps_draw_the_same_trials_under_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let space = space(&[("recipe.lr.top_lr", Distribution::LogUniform { low: 1e-4, high: 1e-2 }), ("recipe.lr.decay", Distribution::Uniform { low: 0.6, high: 1.0 })]);
    for sampler in [Sampler::Random, Sampler::Tpe] {
        let params = |name: &str, seed: u64| -> Vec<String> {
            let s = Sweep { seed, ..sweep(space.clone(), sampler, Some(5), &dir.path().join(format!("{name}-{sampler:?}"))) };
            s.run(&base(), None, &quiet()).unwrap().iter().map(|t| serde_json::to_string(&t.params).unwrap()).collect()
        };
        let (a, b, c) = (params("a", 5), params("b", 5), params("c", 6));
        assert_eq!(a, b, "{sampler:?}: same seed, same trials");
        assert_ne!(a, c, "{sampler:?}: another seed, other trials");
        assert_eq!(a.iter().collect::<BTreeSet<_>>().len(), 5);
    }
}

#[test]
fn a_pruned_trial_stops_at_its_rung_and_keeps_its_curve() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pruned");
    let s = Sweep {
        pruner: Some(SuccessiveHalving { min_resource: Some(5), reduction_factor: 2, ..SuccessiveHalving::default() }),
        ..sweep(space(&[("recipe.lr.top_lr", Distribution::LogUniform { low: 1e-5, high: 3e-2 })]), Sampler::Random, Some(8), &out)
    };
    let trials = s.run(&base(), None, &quiet()).unwrap();
    let pruned: Vec<&Trial> = trials.iter().filter(|t| t.state == TrialState::Pruned).collect();
    let complete = trials.iter().filter(|t| t.state == TrialState::Complete).count();
    assert!(!pruned.is_empty() && complete >= 1, "{trials:#?}");
    let rungs = [5, 10, 20];
    for t in &pruned {
        let at = t.pruned_at.unwrap();
        assert!(rungs.contains(&at), "pruned at {at}, not a rung");
        // It trained up to its rung and no further, and its curve up to there is kept.
        assert_eq!(t.steps, at);
        assert_eq!(logged_steps(&out, t.number), (0..at).collect::<Vec<_>>());
        let evals = std::fs::read_to_string(out.join(format!("trial-{:04}/eval.jsonl", t.number))).unwrap();
        let last: Value = serde_json::from_str(evals.lines().last().unwrap()).unwrap();
        assert_eq!(last["step"].as_u64(), Some(at as u64));
        assert_eq!(last["metrics"]["rmse"].as_f64(), t.score);
    }
    // The pruner's records: the pruned trial's score at its rung was not among the top half of
    // the scores recorded there before it (one worker: the trials before it).
    let mut records: Vec<(u64, Value)> = Vec::new();
    for t in &trials {
        let path = out.join(format!("rungs/trial-{:04}.jsonl", t.number));
        for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
            records.push((t.number as u64, serde_json::from_str(line).unwrap()));
        }
    }
    for t in &pruned {
        let rung = rungs.iter().position(|&r| r == t.pruned_at.unwrap()).unwrap();
        let here: Vec<(u64, f64)> = records.iter().filter(|(_, r)| r["rung"].as_u64() == Some(rung as u64)).map(|(n, r)| (*n, r["value"].as_f64().unwrap())).collect();
        let mine = here.iter().position(|&(n, _)| n == t.number as u64).expect("the pruned trial recorded its score at the rung");
        let mut upto: Vec<f64> = here[..=mine].iter().map(|&(_, v)| v).collect();
        upto.sort_by(f64::total_cmp);
        let index = (upto.len() / 2).saturating_sub(1);
        assert!(here[mine].1 > upto[index], "trial {} was pruned though it is in the top half at rung {rung}: {here:?}", t.number);
    }
    // Steps used: fewer than running every trial to its end.
    let used: usize = trials.iter().map(|t| t.steps).sum();
    assert!(used < 8 * 30, "{used}");
    assert!(!out.join(format!("trial-{:04}/last", pruned[0].number)).exists());
}

#[test]
fn a_bad_sweep_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let refuse = |s: Sweep, base: RunSpec, expected: &[&str]| {
        let err = s.run(&base, None, &quiet()).unwrap_err().to_string();
        for e in expected {
            assert!(err.contains(e), "expected `{e}` in: {err}");
        }
        assert!(!out.exists(), "{err}: the folder was made");
    };
    let one = |key: &str, d: Distribution| space(&[(key, d)]);
    refuse(sweep(one("recipe.lr.top_lrr", Distribution::Uniform { low: 1e-4, high: 1e-3 }), Sampler::Random, Some(2), &out), base(), &["recipe.lr.top_lrr", "unknown field `top_lrr`", "top_lr"]);
    refuse(sweep(one("recipe.reinit.top_layerz", Distribution::Int { low: 0, high: 1 }), Sampler::Random, Some(2), &out), base(), &["recipe.reinit.top_layerz"]);
    refuse(sweep(one("recipe.reinit.top_layers", Distribution::Int { low: 0, high: 1_000_000_000 }), Sampler::Grid, None, &out), base(), &["more than 100000 points"]);
    refuse(sweep(one("recipe.reinit.top_layers", Distribution::Int { low: 0, high: 9 }), Sampler::Random, Some(2), &out), base(), &["recipe.reinit.top_layers = 9"]);
    refuse(sweep(one("recipe.lr.top_lr", Distribution::LogUniform { low: 0.0, high: 1e-3 }), Sampler::Random, Some(2), &out), base(), &["recipe.lr.top_lr", "0 < low"]);
    refuse(sweep(one("recipe.lr.top_lr", Distribution::Uniform { low: 1e-4, high: 1e-3 }), Sampler::Grid, None, &out), base(), &["grid", "recipe.lr.top_lr", "choice"]);
    refuse(sweep(one("recipe.lr.top_lr", choice(&[json!(1e-3), json!(2e-3)])), Sampler::Grid, Some(3), &out), base(), &["2 points"]);
    refuse(sweep(one("recipe.lr.top_lr", Distribution::Uniform { low: 1e-4, high: 1e-3 }), Sampler::Tpe, None, &out), base(), &["trials"]);
    let pruned = |base: RunSpec, expected: &[&str]| {
        let s = Sweep { pruner: Some(SuccessiveHalving::default()), ..sweep(one("recipe.lr.top_lr", Distribution::Uniform { low: 1e-4, high: 1e-3 }), Sampler::Random, Some(2), &out) };
        refuse(s, base, expected);
    };
    pruned(RunSpec { recipe: Recipe { evaluation: Eval::default(), ..base().recipe }, ..base() }, &["recipe.evaluation.every"]);
    let mut cv = base();
    cv.data.cv = Some(tunelab::spec::Cv::new(3, 0));
    pruned(cv, &["data.cv"]);
    // A folder of someone else's files is never used.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let err = sweep(one("recipe.lr.top_lr", Distribution::Uniform { low: 1e-4, high: 1e-3 }), Sampler::Random, Some(1), &out).run(&base(), None, &quiet()).unwrap_err().to_string();
    assert!(err.contains("not a sweep's folder"), "{err}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

/// A rhai script sweeping the tiny model: 4 grid trials of 30 steps each.
fn script(dir: &Path) -> PathBuf {
    let fixtures = common::fixture("");
    let text = format!(
        r#"
let out = "{out}";
let m = model("{fx}/tiny_bert", #{{ pooling: "mean" }});
let d = data(#{{ train: "{fx}/vader-sample/train.tsv", dev: "{fx}/vader-sample/dev.tsv", columns: #{{ text: "text", label: "score" }}, kind: "regression" }});
let r = recipe(#{{ lr: #{{ kind: "llrd", top_lr: 1e-3, decay: 0.8, head_lr: 2e-3 }}, warmup: #{{ steps: 3 }}, evaluation: #{{ every: 5 }} }});
let t = training(#{{ epochs: 2, batch_size: 16, seed: 3, threads: 1, max_length: 64 }});
let space = #{{ "recipe.lr.top_lr": choice([1e-3, 2e-3, 3e-3]), "recipe.lr.decay": choice([0.7, 0.9]) }};
sweep(m, d, r, space, t, #{{ sampler: "grid", out: out }})
"#,
        out = dir.join("sweep").display(),
        fx = fixtures.display().to_string().trim_end_matches('/'),
    );
    let path = dir.join("sweep.rhai");
    std::fs::write(&path, text).unwrap();
    path
}

fn tunelab(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tunelab"));
    c.args(args);
    c
}

#[test]
fn claims_survive_a_kill_and_no_trial_runs_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(dir.path());
    let out = dir.path().join("sweep");
    // Killed (SIGKILL) in trial 1's 12th optimizer step (the process's 42nd).
    let mut child = tunelab(&["run", path.to_str().unwrap(), "--quiet"]).env("TUNELAB_FAILPOINT", "step:42").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the sweep ended before the failpoint");
        if line.trim() == "failpoint step reached" {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first = std::fs::read(out.join("trial-0000.json")).unwrap();
    let open: Trial = serde_json::from_slice(&std::fs::read(out.join("trial-0001.json")).unwrap()).unwrap();
    assert_eq!(open.state, TrialState::Running);
    assert!(out.join("trial-0001.claim").is_file(), "the killed worker's claim is left behind");
    // Two workers at once (the shards of a Slurm array) take the stale claim over and share the rest.
    let workers: Vec<_> = (0..2).map(|i| tunelab(&["run", path.to_str().unwrap(), "--quiet", "--shard", &format!("{i}/2")]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()).collect();
    for w in workers {
        let o = w.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // Trial 0 was not run again; trial 1 ran again once, from its start, with the same values.
    assert_eq!(std::fs::read(out.join("trial-0000.json")).unwrap(), first);
    let trials = tunelab::search::sweep::read_trials(&out).unwrap();
    assert_eq!(trials.len(), 6);
    assert_eq!(trials[1].params, open.params);
    let attempts: Vec<usize> = trials.iter().map(|t| t.attempts).collect();
    assert_eq!(attempts, [1, 2, 1, 1, 1, 1], "the killed trial twice (once killed), every other trial once");
    for t in &trials {
        assert_eq!(t.state, TrialState::Complete, "{t:?}");
        // Each ran once: one log line per step, no step twice.
        assert_eq!(logged_steps(&out, t.number), (0..30).collect::<Vec<_>>(), "trial {}", t.number);
    }
    assert!(!std::fs::read_dir(&out).unwrap().flatten().any(|e| e.file_name().to_string_lossy().contains("claim")), "claims are released");
    // A finished sweep run again does nothing (no record changes) and prints the leaderboard.
    let before = trial_files(&out);
    let o = tunelab(&["run", path.to_str().unwrap(), "--quiet"]).output().unwrap();
    assert!(o.status.success());
    assert_eq!(trial_files(&out), before);
    let merged = tunelab(&["merge", out.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&merged.stdout);
    assert!(text.contains("6 of 6 trials finished (0 pruned), 180 optimizer steps") && text.contains("best/spec.json"), "{text}");
}

#[test]
fn a_diverging_trial_is_marked_failed_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("diverged");
    let s = sweep(space(&[("recipe.lr.head_lr", choice(&[json!(1e6), json!(2e-3)]))]), Sampler::Grid, None, &out);
    let trials = s.run(&base(), None, &quiet()).unwrap();
    assert_eq!(trials[0].state, TrialState::Failed, "{trials:#?}");
    assert!(trials[0].error.as_deref().unwrap().contains("diverged") && trials[0].score.is_none(), "{trials:#?}");
    assert_eq!(trials[1].state, TrialState::Complete);
    let board = tunelab::search::report(&out).unwrap();
    assert_eq!(board.trials[0].number, 1, "the complete trial leads");
    assert!(board.to_string().contains("2 of 2 trials finished (0 pruned, 1 diverged)"), "{board}");
}

#[test]
fn keys_reach_the_specification_they_name() {
    let mut with_dropout = base();
    with_dropout.head.dropout = Some(0.2);
    let space = space(&[
        ("head.samples", choice(&[json!(4)])),
        ("recipe.warmup.fraction", choice(&[json!(0.1)])),
        ("pooling", choice(&[json!("cls")])),
        ("training.batch_size", Distribution::Int { low: 8, high: 8 }),
        ("recipe.reinit.top_layers", Distribution::Int { low: 1, high: 1 }),
    ]);
    let params = space.grid_point(0).unwrap();
    let spec = space.apply(&with_dropout, &params).unwrap();
    assert_eq!((spec.head.dropout, spec.head.samples), (Some(0.2), Some(4)), "the base's other head settings stay");
    assert_eq!(spec.recipe.warmup, Warmup::Fraction(0.1));
    assert_eq!(spec.pooling, tunelab::Pooling::Cls);
    assert_eq!(spec.training.batch_size, 8);
    assert_eq!(spec.recipe.reinit.as_ref().map(|r| r.top_layers), Some(1));
    assert_eq!(spec.recipe.lr, base().recipe.lr, "keys not searched stay the base's");
}

#[test]
fn a_metric_to_maximise_ranks_its_trials_highest_first() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pearson");
    let mut spec = base();
    spec.recipe.evaluation.select_by = Some(tunelab::metrics::Metric::Pearson);
    let s = sweep(space(&[("recipe.lr.top_lr", choice(&[json!(1e-5), json!(1e-3), json!(3e-3)]))]), Sampler::Grid, None, &out);
    s.run(&spec, None, &quiet()).unwrap();
    let board = tunelab::search::report(&out).unwrap();
    assert!(board.higher_is_better && board.metric == "pearson");
    let scores: Vec<f64> = board.trials.iter().map(|t| t.score.unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]) && scores[0] > scores[2], "{scores:?}");
    assert_eq!(board.best.as_ref().unwrap().recipe, s.space.apply(&spec, &board.trials[0].params).unwrap().recipe);
}
