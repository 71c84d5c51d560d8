//! `tunelab kernel` driven over its real sockets by Jupyter's own client library
//! (`jupyter_client`, which `make setup` installs into .venv): scripts/kernel_client.py sends
//! the requests and returns the replies and the iopub messages; these tests check them.
#![cfg(feature = "kernel")]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A kernel process on free local ports, killed if a test ends without shutting it down.
struct Kernel {
    child: Child,
    connection: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Kernel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port no other kernel of this test process was given: the tests start kernels in parallel,
/// and a port the OS hands out twice (bound, released, bound again by a sibling test) made one
/// kernel fail to bind. Ports come from a per-process counter below Linux's ephemeral range,
/// each checked free.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(0, 20_000 + (std::process::id() % 10_000) as u16, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts `tunelab kernel` in the repository (so that the fixtures' relative paths resolve).
fn start() -> Kernel {
    let dir = tempfile::tempdir().unwrap();
    let connection = dir.path().join("kernel-test.json");
    let info = json!({
        "transport": "tcp",
        "ip": "127.0.0.1",
        "shell_port": free_port(),
        "iopub_port": free_port(),
        "stdin_port": free_port(),
        "control_port": free_port(),
        "hb_port": free_port(),
        "key": "a-test-key",
        "signature_scheme": "hmac-sha256",
        "kernel_name": "tunelab-rhai",
    });
    std::fs::write(&connection, info.to_string()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["kernel", "--connection-file"])
        .arg(&connection)
        .current_dir(common::root())
        .env("TUNELAB_RUNS", dir.path().join("runs"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Kernel { child, connection, _dir: dir }
}

/// .venv's Python with jupyter_client: missing is a failure, not a skip.
fn python() -> PathBuf {
    let python = common::root().join(".venv/bin/python");
    let ok = Command::new(&python).args(["-c", "import jupyter_client"]).status().is_ok_and(|s| s.success());
    assert!(ok, "{} cannot import jupyter_client: run `make setup` first", python.display());
    python
}

/// Sends the requests; returns one result per request (see scripts/kernel_client.py).
fn drive(kernel: &Kernel, ops: Value) -> Vec<Value> {
    let mut client = Command::new(python())
        .arg(common::root().join("scripts/kernel_client.py"))
        .arg(&kernel.connection)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    client.stdin.take().unwrap().write_all(ops.to_string().as_bytes()).unwrap();
    let out = client.wait_with_output().unwrap();
    assert!(out.status.success(), "kernel_client.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

/// The iopub messages of a result with that type.
fn iopub<'a>(result: &'a Value, msg_type: &str) -> Vec<&'a Value> {
    result["iopub"].as_array().unwrap().iter().filter(|m| m["msg_type"] == msg_type).map(|m| &m["content"]).collect()
}

fn wait_exit(kernel: &mut Kernel, within: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = kernel.child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < within, "the kernel did not exit within {within:?} of the shutdown");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn execute(code: &str) -> Value {
    json!({ "op": "execute", "code": code })
}

#[test]
fn cells_share_a_scope_print_fail_with_a_position_and_shutdown_exits_0() {
    let mut kernel = start();
    let results = drive(
        &kernel,
        json!([
            { "op": "kernel_info" },
            execute("1 + 1"),
            execute("let x = 3;"),
            execute("x * 2"),
            execute("fn f(a) { a + 1 }"),
            execute("f(1)"),
            execute("print(\"hi\");"),
            execute("let y = 1;\nlet z = nope(y);"),
            execute("x + 1"),
            { "op": "bad_signature" },
            execute("\"still here\""),
            { "op": "comm_info" },
            { "op": "history" },
            { "op": "shutdown" },
        ]),
    );
    let info = &results[0];
    assert_eq!(info["msg_type"], "kernel_info_reply");
    assert_eq!(info["reply"]["implementation"], "tunelab");
    assert_eq!(info["reply"]["protocol_version"], "5.3");
    let language = &info["reply"]["language_info"];
    assert_eq!((language["name"].as_str(), language["file_extension"].as_str(), language["mimetype"].as_str()), (Some("rhai"), Some(".rhai"), Some("text/x-rhai")));

    let two = &results[1];
    assert_eq!((two["reply"]["status"].as_str(), two["reply"]["execution_count"].as_i64()), (Some("ok"), Some(1)));
    let statuses: Vec<&str> = iopub(two, "status").iter().filter_map(|c| c["execution_state"].as_str()).collect();
    assert_eq!(statuses, ["busy", "idle"]);
    assert_eq!(iopub(two, "execute_input")[0]["code"], "1 + 1");
    let result = iopub(two, "execute_result");
    assert_eq!((result[0]["data"]["text/plain"].as_str(), result[0]["execution_count"].as_i64()), (Some("2"), Some(1)));

    assert!(iopub(&results[2], "execute_result").is_empty(), "a `let` shows nothing");
    assert_eq!(iopub(&results[3], "execute_result")[0]["data"]["text/plain"], "6");
    assert_eq!(iopub(&results[5], "execute_result")[0]["data"]["text/plain"], "2");
    assert_eq!(results[5]["reply"]["execution_count"], 5);
    let stream = iopub(&results[6], "stream");
    assert_eq!((stream[0]["name"].as_str(), stream[0]["text"].as_str()), (Some("stdout"), Some("hi\n")));

    let failed = &results[7];
    assert_eq!((failed["reply"]["status"].as_str(), failed["reply"]["ename"].as_str()), (Some("error"), Some("ScriptError")));
    let evalue = failed["reply"]["evalue"].as_str().unwrap();
    assert!(evalue.starts_with("line 2, column 9: ") && evalue.contains("nope"), "{evalue}");
    let error = iopub(failed, "error");
    assert_eq!(error[0]["traceback"], json!([evalue]), "one line, no backtrace");
    assert_eq!(iopub(&results[8], "execute_result")[0]["data"]["text/plain"], "4", "the kernel lives on after an error");

    assert_eq!(results[9]["reply"]["seen"], json!([]), "a message signed with another key is ignored");
    assert_eq!(iopub(&results[10], "execute_result")[0]["data"]["text/plain"], "still here");
    assert_eq!(results[11]["reply"], json!({ "status": "ok", "comms": {} }));
    assert_eq!(results[12]["reply"], json!({ "status": "ok", "history": [] }));
    assert_eq!(results[13]["msg_type"], "shutdown_reply");
    let status = wait_exit(&mut kernel, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "a shutdown exits 0");
}

#[test]
fn a_plan_shows_its_group_table_as_html_and_its_lr_schedule_as_png_and_svg() {
    let kernel = start();
    let code = r#"let m = model("tests/fixtures/tiny_bert");
let d = data(#{ train: "tests/fixtures/vader-sample/train.tsv", dev: "tests/fixtures/vader-sample/dev.tsv",
                columns: #{ text: "text", label: "score" }, kind: "regression" });
let r = recipe(#{ lr: #{ kind: "llrd", top_lr: 1e-4, decay: 0.9, head_lr: 5e-4 }, warmup: 0.1 });
plan(m, d, r, training(#{ epochs: 1, batch_size: 8, max_length: 64 }))"#;
    let results = drive(&kernel, json!([execute(code), execute("r")]));
    let planned = &results[0];
    assert_eq!(planned["reply"]["status"], "ok", "{}", planned["reply"]);
    let displays = iopub(planned, "display_data");
    let table = displays.iter().find(|d| d["data"]["text/html"].is_string()).expect("an HTML display");
    let html = table["data"]["text/html"].as_str().unwrap();
    assert!(html.contains("<table>") && html.contains("encoder.layer.0") && html.contains("warm-up ends"), "{html}");
    assert!(table["data"]["text/plain"].as_str().unwrap().contains("optimizer steps"));
    let chart = displays.iter().find(|d| d["data"]["image/png"].is_string()).expect("a PNG display");
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD.decode(chart["data"]["image/png"].as_str().unwrap()).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    assert!(chart["data"]["image/svg+xml"].as_str().unwrap().starts_with("<svg"));
    let recipe = iopub(&results[1], "execute_result")[0]["data"]["text/plain"].as_str().unwrap().to_string();
    assert!(recipe.contains("llrd"), "a recipe shows as its JSON: {recipe}");
}

#[test]
fn completion_inspection_and_is_complete() {
    let kernel = start();
    let results = drive(
        &kernel,
        json!([
            execute("let training_rows = 10;"),
            { "op": "complete", "code": "let t = trai", "cursor_pos": 12 },
            { "op": "complete", "code": "let r = recipe(#{ warmup: 0.1, sw", "cursor_pos": 33 },
            { "op": "inspect", "code": "recipe", "cursor_pos": 3 },
            { "op": "inspect", "code": "recipe(#{ lr: #{ kind: \"llrd\" } })", "cursor_pos": 18 },
            { "op": "is_complete", "code": "let r = recipe(#{" },
            { "op": "is_complete", "code": "let r = recipe(#{ warmup: 0.1 });" },
            { "op": "is_complete", "code": "let = ;" },
        ]),
    );
    let matches: Vec<&str> = results[1]["reply"]["matches"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(["train", "training", "training_rows"].iter().all(|m| matches.contains(m)), "{matches:?}");
    assert_eq!((results[1]["reply"]["cursor_start"].as_i64(), results[1]["reply"]["cursor_end"].as_i64()), (Some(8), Some(12)));
    assert_eq!(results[2]["reply"]["matches"], json!(["swa"]), "inside recipe(#{{ .. }}) the keys of `recipe`");
    let recipe = &results[3]["reply"];
    assert_eq!(recipe["found"], true);
    let text = recipe["data"]["text/plain"].as_str().unwrap();
    assert!(text.contains("recipe(") && text.contains("recipe.weight_decay"), "{text}");
    let kind = results[4]["reply"]["data"]["text/plain"].as_str().unwrap();
    assert!(kind.contains("recipe.lr.kind: `uniform` | `llrd` | `grouped` (default: `uniform`)"), "{kind}");
    assert_eq!(results[5]["reply"], json!({ "status": "incomplete", "indent": "        " }));
    assert_eq!(results[6]["reply"]["status"], "complete");
    assert_eq!(results[7]["reply"]["status"], "invalid");
}

#[test]
fn an_interrupt_stops_a_running_cell_and_the_scope_survives() {
    let kernel = start();
    let results = drive(
        &kernel,
        json!([
            execute("let kept = 41;"),
            { "op": "execute", "code": "let i = 0;\nwhile true { i += 1; }", "interrupt_after": 0.3 },
            execute("kept + 1"),
        ]),
    );
    let stopped = &results[1];
    assert_eq!((stopped["reply"]["status"].as_str(), stopped["reply"]["ename"].as_str()), (Some("error"), Some("Interrupted")), "{}", stopped["reply"]);
    assert!(stopped["ms"].as_f64().unwrap() < 3000.0, "stopped at once: {} ms", stopped["ms"]);
    assert_eq!(iopub(&results[2], "execute_result")[0]["data"]["text/plain"], "42");
}

#[test]
fn install_writes_a_kernelspec_for_this_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["kernel", "--install", "--prefix"])
        .arg(dir.path())
        .args(["--name", "tunelab-test"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spec_dir = dir.path().join("share/jupyter/kernels/tunelab-test");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(spec_dir.join("kernel.json")).unwrap()).unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_tunelab")).canonicalize().unwrap();
    assert_eq!(spec["argv"], json!([exe.display().to_string(), "kernel", "--connection-file", "{connection_file}"]));
    assert_eq!((spec["display_name"].as_str(), spec["language"].as_str(), spec["interrupt_mode"].as_str()), (Some("tunelab (rhai)"), Some("rhai"), Some("message")));
    for logo in ["logo-32x32.png", "logo-64x64.png"] {
        assert_eq!(&std::fs::read(spec_dir.join(logo)).unwrap()[..4], b"\x89PNG", "{logo}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_tunelab")).args(["kernel", "--install", "--prefix", "x", "--name", "a/b"]).output().unwrap();
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("kernel name"));
}

#[test]
fn an_interrupt_stops_a_training_at_a_step_boundary_and_resume_finishes_it() {
    let kernel = start();
    let train = r#"let d = data(#{ train: "tests/fixtures/vader-sample/train.tsv", dev: "tests/fixtures/vader-sample/dev.tsv",
                columns: #{ text: "text", label: "score" }, kind: "regression" });
let t = training(#{ epochs: 16, batch_size: 8, max_length: 64, threads: 1 });
let run = train(model("tests/fixtures/tiny_bert"), d, recipe(), t);
print("not reached");"#;
    let results = drive(
        &kernel,
        json!([
            { "op": "execute", "code": train, "interrupt_after": 0.4 },
            execute("[run.finished, run.steps]"),
            execute("let again = resume(run); [again.finished, again.steps]"),
            execute("again.dir"),
        ]),
    );
    let stopped = &results[0];
    assert_eq!(stopped["reply"]["ename"], "Interrupted", "{}", stopped["reply"]);
    assert!(iopub(stopped, "stream").is_empty(), "the cell stops after the training");
    // Live progress: one display with an id, updated in place.
    let shown: Vec<&Value> = iopub(stopped, "display_data").into_iter().filter(|d| d["transient"]["display_id"].is_string()).collect();
    assert_eq!(shown.len(), 1, "one progress display: {stopped}");
    let id = &shown[0]["transient"]["display_id"];
    assert!(shown[0]["data"]["text/plain"].as_str().unwrap().starts_with("training: step 1/480"), "{}", shown[0]);
    assert!(shown[0]["data"]["text/html"].as_str().unwrap().contains("<table>"));
    let updates = iopub(stopped, "update_display_data");
    assert!(!updates.is_empty() && updates.iter().all(|u| &u["transient"]["display_id"] == id), "{updates:?}");
    let last = updates.last().unwrap()["data"]["text/plain"].as_str().unwrap();
    assert!(last.contains("examples/s") && last.contains("ETA") && last.contains("LR "), "{last}");
    let summary = iopub(stopped, "display_data").into_iter().find(|d| !d["transient"]["display_id"].is_string()).unwrap()["data"]["text/plain"].as_str().unwrap().to_string();
    assert!(summary.starts_with("run stopped after ") && summary.contains("of 480 steps (resumable"), "{summary}");
    let state: Value = serde_json::from_str(iopub(&results[1], "execute_result")[0]["data"]["text/plain"].as_str().unwrap()).unwrap();
    assert_eq!(state[0], false, "the run in scope is the stopped one");
    assert!(state[1].as_i64().unwrap() < 480);
    assert_eq!(iopub(&results[2], "execute_result")[0]["data"]["text/plain"], "[true, 480]");
    // The interrupted-then-resumed run ends with the weights of the same run never interrupted.
    let dir = PathBuf::from(iopub(&results[3], "execute_result")[0]["data"]["text/plain"].as_str().unwrap());
    let whole = kernel._dir.path().join("whole");
    let out = Command::new(env!("CARGO_BIN_EXE_tunelab"))
        .args(["train", dir.join("spec.json").to_str().unwrap(), "--out", whole.to_str().unwrap(), "--quiet"])
        .current_dir(common::root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for file in ["best/model.safetensors", "best/head.safetensors", "last/model/model.safetensors", "last/optimizer.safetensors"] {
        assert!(std::fs::read(dir.join(file)).unwrap() == std::fs::read(whole.join(file)).unwrap(), "{file} differs from the uninterrupted run");
    }
}

#[test]
fn a_cell_ending_with_a_semicolon_shows_no_value() {
    let kernel = start();
    let results = drive(&kernel, json!([execute("40 + 2;"), execute("40 + 2")]));
    assert!(iopub(&results[0], "execute_result").is_empty(), "{}", results[0]);
    assert_eq!(iopub(&results[1], "execute_result")[0]["data"]["text/plain"], "42");
}

#[test]
fn after_a_failed_cell_the_queued_cells_are_aborted_as_ipython_does() {
    let kernel = start();
    let results = drive(&kernel, json!([
        // The first cell takes a moment, so that every cell is sent before the second one fails.
        { "op": "execute_all", "codes": ["let a = 0; for i in 0..300000 { a = 1; }", "undefined_name + 1", "let b = 2;", "a + 1"] },
        execute("a + 1"),
    ]));
    assert_eq!(results[0]["reply"]["status"], "ok");
    assert_eq!(results[1]["reply"]["status"], "error");
    assert_eq!(results[2]["reply"]["status"], "aborted", "{}", results[2]);
    assert_eq!(results[3]["reply"]["status"], "aborted");
    // A cell sent afterwards runs, in the same scope.
    assert_eq!(iopub(&results[4], "execute_result")[0]["data"]["text/plain"], "2");
}

#[test]
fn shutting_down_during_a_training_stops_it_at_a_step_with_its_checkpoint() {
    let mut kernel = start();
    let train = r#"let d = data(#{ train: "tests/fixtures/vader-sample/train.tsv", dev: "tests/fixtures/vader-sample/dev.tsv",
                columns: #{ text: "text", label: "score" }, kind: "regression" });
let run = train(model("tests/fixtures/tiny_bert"), d, recipe(), training(#{ epochs: 16, batch_size: 8, max_length: 64, threads: 1 }));"#;
    drive(&kernel, json!([{ "op": "execute_then_shutdown", "code": train, "after": 0.6 }]));
    assert!(wait_exit(&mut kernel, Duration::from_secs(30)).success());
    let runs: Vec<PathBuf> = std::fs::read_dir(kernel._dir.path().join("runs")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert!(!run.join("lock").exists(), "the run was closed, not killed");
    assert!(run.join("last/state.json").is_file(), "stopped with its checkpoint");
    let metrics: Value = serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["finished"], false);
}

#[test]
fn a_sweep_shows_its_leaderboard_and_its_two_charts() {
    let kernel = start();
    let dir = tempfile::tempdir().unwrap();
    let code = format!(
        r#"let m = model("tests/fixtures/tiny_bert", #{{ pooling: "mean" }});
let d = data(#{{ train: "tests/fixtures/vader-sample/train.tsv", dev: "tests/fixtures/vader-sample/dev.tsv",
                columns: #{{ text: "text", label: "score" }}, kind: "regression" }});
let r = recipe(#{{ lr: #{{ kind: "llrd", top_lr: 1e-3, decay: 0.9, head_lr: 2e-3 }}, evaluation: #{{ every: 5 }} }});
let trials = sweep(m, d, r, #{{ "recipe.lr.top_lr": log_uniform(1e-4, 1e-2) }}, training(#{{ epochs: 1, batch_size: 16, max_length: 64, threads: 1 }}),
                   #{{ sampler: "random", trials: 3, out: "{}" }});
trials.len()"#,
        dir.path().join("sweep").display()
    );
    let results = drive(&kernel, json!([execute(&code)]));
    let swept = &results[0];
    assert_eq!(swept["reply"]["status"], "ok", "{}", swept["reply"]);
    let displays = iopub(swept, "display_data");
    // The trials' live progress comes first (one display, updated in place), then the results.
    assert!(displays.iter().any(|d| d["data"]["text/plain"].as_str().is_some_and(|t| t.starts_with("training: step"))), "the trials' progress");
    let board = displays.iter().find(|d| d["data"]["text/plain"].as_str().is_some_and(|t| t.contains("trials finished"))).expect("the leaderboard");
    let text = board["data"]["text/plain"].as_str().unwrap();
    assert!(text.contains("3 of 3 trials finished") && text.contains("recipe.lr.top_lr"), "{text}");
    let charts: Vec<&str> = displays.iter().filter(|d| d["data"]["image/png"].is_string()).map(|d| d["data"]["text/plain"].as_str().unwrap()).collect();
    assert!(charts.len() == 2 && charts[0].ends_with("history.png") && charts[1].ends_with("parameters.png"), "{charts:?}");
    assert_eq!(iopub(swept, "execute_result")[0]["data"]["text/plain"], "3");
}

fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by its parent) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

fn gone_within(pid: u32, seconds: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// A kernel does not outlive its frontend: SIGTERM ends it, and so does the death of the
/// process that started it (it is adopted by another).
#[test]
fn the_kernel_exits_on_sigterm_and_when_its_frontend_dies() {
    let kernel = start();
    std::thread::sleep(std::time::Duration::from_millis(500));
    Command::new("kill").args(["-TERM", &kernel.child.id().to_string()]).status().unwrap();
    // SIGTERM's default action would end it too: this guards the handler against never
    // letting the kernel exit, not the handler's checkpoint (no training runs here).
    assert!(gone_within(kernel.child.id(), 10), "still running 10 s after SIGTERM");

    // A shell starts the kernel in the background, as its frontend (JPY_PARENT_PID, as
    // jupyter_client sets it), and exits.
    let dir = tempfile::tempdir().unwrap();
    let connection = dir.path().join("orphan.json");
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let info = json!({
        "transport": "tcp", "ip": "127.0.0.1", "shell_port": ports[0], "iopub_port": ports[1], "stdin_port": ports[2],
        "control_port": ports[3], "hb_port": ports[4], "key": "a-test-key", "signature_scheme": "hmac-sha256",
    });
    std::fs::write(&connection, info.to_string()).unwrap();
    let script = format!("JPY_PARENT_PID=$$ '{}' kernel --connection-file '{}' >/dev/null 2>&1 & echo $!; sleep 1", env!("CARGO_BIN_EXE_tunelab"), connection.display());
    let out = Command::new("sh").args(["-c", &script]).current_dir(common::root()).output().unwrap();
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(gone_within(pid, 10), "an orphaned kernel still runs 10 s after its parent exited");
}
