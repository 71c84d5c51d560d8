//! RESULTS.md's tables are what `tunelab merge --markdown` prints for the committed result files
//! (results/seed-table/<dataset>/, results/repeated-cv/, results/zoo/amazon/, results/zoo/seed-table-amazon/ and -movies/, the sweeps' trial records in
//! results/sweep/amazon/): the numbers can be re-derived, and a table edited by hand or
//! left behind by a re-run fails here. The merge runs on a copy (it rewrites summary.csv and
//! ablation.png).
mod common;

use std::path::Path;
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        if path.is_file() {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn the_results_page_tables_are_the_merge_of_the_committed_rows() {
    let page = std::fs::read_to_string(common::root().join("RESULTS.md")).unwrap();
    for (dataset, marker, options) in [
        ("seed-table/movies", "MOVIES", &[][..]),
        ("seed-table/amazon", "AMAZON", &[]),
        ("repeated-cv/amazon", "REPEATED", &[]),
        ("zoo/amazon", "ZOO", &["--each-vs-first"]),
        ("zoo/seed-table-amazon", "SEED-TRAINED", &[]),
        ("zoo/seed-table-movies", "SEED-TRAINED-MOVIES", &[]),
        ("sweep/amazon/grid", "SWEEP-GRID", &[]),
        ("sweep/amazon/tpe", "SWEEP-TPE", &[]),
        ("sweep/amazon/seeds", "SWEEP-SEEDS", &[]),
    ] {
        let (start, end) = (format!("<!-- {marker} -->"), format!("<!-- /{marker} -->"));
        let block = &page[page.find(&start).unwrap_or_else(|| panic!("RESULTS.md has no {start}")) + start.len()..page.find(&end).unwrap()];
        let table: Vec<&str> = block.lines().filter(|l| l.starts_with('|')).collect();
        assert!(table.len() >= 4, "{dataset}: {} table lines", table.len());
        let copy = tempfile::tempdir().unwrap();
        copy_dir(&common::root().join("results").join(dataset), copy.path());
        let out = Command::new(env!("CARGO_BIN_EXE_tunelab")).args(["merge", copy.path().to_str().unwrap(), "--markdown"]).args(options).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let merged: Vec<&str> = stdout.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(table, merged, "{dataset}: RESULTS.md against `tunelab merge --markdown`");
    }
}
