//! `tunelab inspect` on the real all-MiniLM-L6-v2.
mod common;

#[test]
fn inspect_reports_the_real_minilm() {
    let dir = common::minilm_dir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["inspect", dir.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["parameters"], 22_713_216);
    assert_eq!(v["layers"], 6);
    assert_eq!(v["hidden_size"], 384);
    assert_eq!(v["model_type"], "bert");
    let blocks: Vec<&str> = v["blocks"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(blocks.first(), Some(&"embeddings"));
    assert_eq!(blocks.last(), Some(&"pooler"));
    assert!(blocks.contains(&"encoder.layer.5"));
}
