//! Charts render headless, with the bundled font, as SVG and PNG.
mod common;

use tunelab::groups::{GroupTable, LrLayout, ParamInfo, Role};
use tunelab::plot::Chart;
use tunelab::recipe::{Recipe, Warmup};
use tunelab::techniques::{Swa, swa::At};

fn lr_table() -> tunelab::recipe::LrTable {
    let params = [
        ParamInfo::new("embeddings.word_embeddings.weight", Role::Embedding, 1),
        ParamInfo::new("encoder.layer.0.output.dense.weight", Role::Weight, 1),
        ParamInfo::new("encoder.layer.1.output.dense.weight", Role::Weight, 1),
        ParamInfo::new("head.weight", Role::Weight, 1),
    ];
    let layout = LrLayout::Llrd { top_lr: 1e-4, decay: 0.8, head_lr: 3e-4 };
    let table = GroupTable::build(&params, 2, &layout, 0.01).unwrap();
    let recipe = Recipe { lr: layout, warmup: Warmup::Steps(10), swa: Some(Swa { start: At::Step(70), ..Swa::default() }), ..Recipe::default() };
    recipe.lr_table(&table, 100).unwrap()
}

#[test]
fn the_lr_chart_names_every_group_and_marks_warmup_and_swa() {
    let svg = Chart::lr(&lr_table()).svg();
    for text in ["embeddings", "layer.0", "layer.1", "head", "warm-up ends (10)", "SWA starts (70)", "optimizer step", "learning rate"] {
        assert!(svg.contains(text), "the SVG lacks `{text}`");
    }
    assert!(Chart::lr_log(&lr_table()).svg().contains("<polyline"), "log scale draws lines");
}

#[test]
fn charts_save_as_png_and_svg_and_refuse_other_formats() {
    let dir = tempfile::tempdir().unwrap();
    let chart = Chart::lr(&lr_table());
    chart.save(&dir.path().join("lr.png")).unwrap();
    let png = std::fs::read(dir.path().join("lr.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    chart.save(&dir.path().join("lr.svg")).unwrap();
    assert!(std::fs::read_to_string(dir.path().join("lr.svg")).unwrap().starts_with("<svg"));
    let err = chart.save(&dir.path().join("lr.pdf")).unwrap_err().to_string();
    assert!(err.ends_with("lr.pdf: a plot is written as .svg or .png"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file left behind");
}

#[test]
fn run_and_ablation_charts_read_what_runs_leave_behind() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tunelab::RunSpec {
        model: common::fixture("tiny_bert"),
        pooling: tunelab::Pooling::Pooler,
        head: Default::default(),
        data: tunelab::DataSpec {
            train: common::fixture("vader-sample/train.tsv"),
            dev: Some(common::fixture("vader-sample/dev.tsv")),
            columns: tunelab::data::Columns::new("text", "score"),
            kind: tunelab::data::TaskKind::Regression,
            skip_invalid: false,
            train_limit: Some(64),
            dev_limit: None,
            subset: tunelab::data::Subset::default(),
            cv: None,
            test: None,
            test_limit: None,
        },
        recipe: Recipe { swa: Some(Swa { start: At::Step(2), ..Swa::default() }), ..Recipe::default() },
        training: tunelab::TrainConfig { epochs: 1, batch_size: 8, max_length: 64, ..Default::default() },
    };
    let run = spec.run_with(&tunelab::RunControl::quiet_under(dir.path())).unwrap();
    let curves = tunelab::run_dir::RunDir::open(&run.dir).unwrap().curves(None).unwrap();
    assert_eq!((curves.loss.len(), curves.metric.as_str()), (8, "rmse"));
    assert_eq!(curves.dev.len(), 1);
    let svg = Chart::runs(&[curves]).svg();
    assert!(svg.contains("Training loss") && svg.contains("Dev rmse") && svg.contains("run"), "run chart");

    let set = |name: &str, best: Vec<f64>| tunelab::plot::ScoreSet { name: name.into(), best, swa: vec![] };
    let svg = Chart::scores("out-of-fold rmse", vec![set("baseline", vec![1.2, 1.3]), set("+ LLRD", vec![1.1])], Some(("trivial (training mean)".into(), 1.4))).svg();
    assert!(svg.contains("baseline") && svg.contains("+ LLRD") && svg.contains("mean ± sd"), "ablation chart");
    assert!(svg.contains("Out-of-fold rmse per recipe") && svg.contains("trivial (training mean): 1.4000"), "it says what it shows and draws the trivial score");

    // Another metric than the selection one, and a metric the run never logged.
    let pearson = tunelab::run_dir::RunDir::open(&run.dir).unwrap().curves(Some("pearson")).unwrap();
    assert_eq!(pearson.metric, "pearson");
    let err = tunelab::run_dir::RunDir::open(&run.dir).unwrap().curves(Some("bleu")).unwrap_err().to_string();
    assert!(err.contains("no metric `bleu`") && err.contains("pearson"), "{err}");
}
