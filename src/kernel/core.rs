//! The request loops: one task per socket on a small tokio runtime, and the rhai session on a
//! thread of its own (rhai's engine and scope are not `Send`), reached through a channel.
//!
//! Shell requests are handled in order, one at a time; an `execute_request` waits for its cell
//! while the control loop stays free to answer `interrupt_request` and `shutdown_request`.
//! Every request is wrapped in `status: busy` / `status: idle` on iopub.
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};
use zeromq::{PubSocket, RepSocket, RouterSocket, SocketRecv, SocketSend};

use super::connection::{ConnectionInfo, Signer, bind};
use super::display::{self, Bundle};
use super::help;
use super::message::{Message, PROTOCOL_VERSION};
use crate::error::{Error, Result};
use crate::run::RunControl;
use crate::script::ScriptSettings;
use crate::script::session::{Completeness, INTERRUPTED, Session, completeness};

/// Work for the session's thread.
enum Job {
    Execute { code: String, silent: bool, store_history: bool, events: mpsc::UnboundedSender<Event> },
    Complete { code: String, cursor: usize, reply: oneshot::Sender<Value> },
    Inspect { code: String, cursor: usize, reply: oneshot::Sender<Value> },
}

/// What a running cell reports, in order, ending with `Done`.
enum Event {
    Started(usize),
    Stdout(String),
    Display(Bundle),
    /// A training's live progress: shown under `display_id`, then updated in place.
    Progress { display_id: String, bundle: Bundle, first: bool },
    Result(usize, Bundle),
    Error { ename: String, evalue: String },
    Done(Value),
}

/// Runs the kernel until a `shutdown_request`.
pub fn run(info: ConnectionInfo) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("kernel: cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(serve(info));
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    result
}

/// Sends on iopub: the one socket every task publishes on.
#[derive(Clone)]
struct Publisher {
    socket: Arc<Mutex<PubSocket>>,
    signer: Signer,
    session: String,
}

impl Publisher {
    async fn send(&self, parent: &Message, msg_type: &str, content: Value) {
        let message = parent.child(&self.session, msg_type, content).on_topic(&self.session);
        if let Some(frames) = message.to_frames(&self.signer)
            && let Err(e) = self.socket.lock().await.send(frames).await
        {
            eprintln!("tunelab kernel: iopub: {e}");
        }
    }

    async fn status(&self, parent: &Message, state: &str) {
        self.send(parent, "status", json!({ "execution_state": state })).await;
    }
}

/// What the shell and control loops share.
#[derive(Clone)]
struct Kernel {
    iopub: Publisher,
    signer: Signer,
    session: String,
    interrupt: Arc<AtomicBool>,
    /// True while the session's thread runs a cell.
    running: Arc<AtomicBool>,
    shutdown: mpsc::Sender<()>,
}

async fn serve(info: ConnectionInfo) -> Result<()> {
    let signer = Signer::new(&info.key);
    let session = uuid::Uuid::new_v4().to_string();
    let heartbeat: RepSocket = bind(&info, info.hb_port).await?;
    let shell: RouterSocket = bind(&info, info.shell_port).await?;
    let control: RouterSocket = bind(&info, info.control_port).await?;
    // Bound so that clients can connect; the kernel does not ask for input (no `input_request`).
    let _stdin: RouterSocket = bind(&info, info.stdin_port).await?;
    let iopub: PubSocket = bind(&info, info.iopub_port).await?;
    let iopub = Publisher { socket: Arc::new(Mutex::new(iopub)), signer: signer.clone(), session: session.clone() };

    let running = Arc::new(AtomicBool::new(false));
    let (jobs, interrupt) = start_session(running.clone()).await?;
    let (shutdown, mut shutdown_requested) = mpsc::channel(1);
    let kernel = Kernel { iopub, signer, session, interrupt: interrupt.clone(), running, shutdown };

    tokio::spawn(echo(heartbeat));
    tokio::spawn(async move {
        // SIGINT (a frontend's interrupt when it signals instead of messaging) stops the cell, not the kernel.
        while tokio::signal::ctrl_c().await.is_ok() {
            interrupt.store(true, Ordering::SeqCst);
        }
    });
    tokio::spawn(exit_with_frontend(kernel.clone()));
    tokio::spawn(control_loop(control, kernel.clone()));
    tokio::spawn(shell_loop(shell, kernel, jobs));
    shutdown_requested.recv().await;
    Ok(())
}

/// SIGTERM (a frontend that stops waiting for its shutdown request) and the end of the process
/// that started the kernel (`JPY_PARENT_PID`, which jupyter_client sets, as ipykernel reads it)
/// end the kernel as a shutdown request does: a running training stops at a step boundary with
/// its checkpoint first. A kernel started without `JPY_PARENT_PID` (by hand, detached) is not
/// watched.
#[cfg(unix)]
async fn exit_with_frontend(kernel: Kernel) {
    let parent: Option<u32> = std::env::var("JPY_PARENT_PID").ok().and_then(|p| p.trim().parse().ok()).filter(|&p| p > 1);
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else { return };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                if parent.is_some_and(|p| !crate::run_dir::process_alive(p)) {
                    break;
                }
            }
        }
    }
    kernel.stop_and_exit().await;
}

#[cfg(not(unix))]
async fn exit_with_frontend(_kernel: Kernel) {}

/// The heartbeat: every message comes back as it is.
async fn echo(mut socket: RepSocket) {
    while let Ok(message) = socket.recv().await {
        if socket.send(message).await.is_err() {
            break;
        }
    }
}

/// Starts the session's thread; returns its job queue and its interrupt flag.
async fn start_session(running: Arc<AtomicBool>) -> Result<(std::sync::mpsc::Sender<Job>, Arc<AtomicBool>)> {
    let (jobs, queue) = std::sync::mpsc::channel::<Job>();
    let (flag_tx, flag_rx) = oneshot::channel();
    let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    std::thread::Builder::new()
        .name("tunelab-session".into())
        .spawn(move || {
            let sink: std::rc::Rc<std::cell::RefCell<Option<mpsc::UnboundedSender<Event>>>> = Default::default();
            // The running cell's events, for the progress hook (called on this thread by the loop).
            let progress_sink: Arc<std::sync::Mutex<Option<mpsc::UnboundedSender<Event>>>> = Default::default();
            let printer = sink.clone();
            let print = move |line: &str| {
                if let Some(events) = printer.borrow().as_ref() {
                    let _ = events.send(Event::Stdout(format!("{line}\n")));
                }
            };
            let mut session = Session::new(settings(live_progress(progress_sink.clone())), dir, print);
            let _ = flag_tx.send(session.interrupt_flag());
            while let Ok(job) = queue.recv() {
                match job {
                    Job::Execute { code, silent, store_history, events } => {
                        running.store(true, Ordering::SeqCst);
                        *sink.borrow_mut() = Some(events.clone());
                        *progress_sink.lock().unwrap_or_else(|e| e.into_inner()) = (!silent).then(|| events.clone());
                        execute(&mut session, &code, silent, store_history, &events);
                        *sink.borrow_mut() = None;
                        *progress_sink.lock().unwrap_or_else(|e| e.into_inner()) = None;
                        running.store(false, Ordering::SeqCst);
                    }
                    Job::Complete { code, cursor, reply } => {
                        let _ = reply.send(help::complete(&session, &code, cursor));
                    }
                    Job::Inspect { code, cursor, reply } => {
                        let _ = reply.send(help::inspect(&session, &code, cursor));
                    }
                }
            }
        })
        .map_err(|e| Error::Invalid(format!("kernel: cannot start the session's thread: {e}")))?;
    let interrupt = flag_rx.await.map_err(|_| Error::Invalid("kernel: the session did not start".into()))?;
    Ok((jobs, interrupt))
}

/// The session's settings: runs under `$TUNELAB_RUNS` (or `runs/`), no progress bar on the
/// kernel's stderr, and no operation limit: as in IPython, a cell runs until it ends or the
/// stop button interrupts it.
fn settings(progress: crate::progress::ProgressHook) -> ScriptSettings {
    let control = RunControl { runs_root: std::env::var_os("TUNELAB_RUNS").map(PathBuf::from), quiet: true, progress: Some(progress), ..RunControl::default() };
    ScriptSettings { control, max_operations: 0, ..ScriptSettings::default() }
}

/// The progress hook of every training a cell starts: a display shown at the first step and
/// updated in place (`update_display_data`) at most every 0.25 s, and at the end.
fn live_progress(sink: Arc<std::sync::Mutex<Option<mpsc::UnboundedSender<Event>>>>) -> crate::progress::ProgressHook {
    let state: std::sync::Mutex<(Option<String>, Option<std::time::Instant>)> = std::sync::Mutex::new((None, None));
    crate::progress::ProgressHook(Arc::new(move |p: &crate::progress::Progress| {
        let Some(events) = sink.lock().unwrap_or_else(|e| e.into_inner()).clone() else { return };
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let first = state.0.is_none();
        if !first && !p.done && state.1.is_some_and(|t| now.duration_since(t).as_secs_f64() < 0.25) {
            return;
        }
        let display_id = state.0.get_or_insert_with(|| uuid::Uuid::new_v4().to_string()).clone();
        let _ = events.send(Event::Progress { display_id, bundle: display::progress(p), first });
        *state = if p.done { (None, None) } else { (state.0.take(), Some(now)) };
    }))
}

/// Runs one cell on the session's thread and reports it as events.
fn execute(session: &mut Session, code: &str, silent: bool, store_history: bool, events: &mpsc::UnboundedSender<Event>) {
    let store_history = store_history && !silent;
    let send = |e: Event| {
        let _ = events.send(e);
    };
    send(Event::Started(if store_history { session.next_execution_count() } else { session.execution_count() }));
    let cell = match std::panic::catch_unwind(AssertUnwindSafe(|| session.execute(code, store_history))) {
        Ok(cell) => cell,
        Err(panic) => {
            let what = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            let evalue = format!("an internal error stopped the cell (a bug in tunelab: please report it): {what}");
            send(Event::Error { ename: "InternalError".into(), evalue: evalue.clone() });
            send(Event::Done(error_reply(session.execution_count(), "InternalError", &evalue)));
            return;
        }
    };
    for bundle in display::recorded(&cell.recorded) {
        send(Event::Display(bundle));
    }
    match cell.value {
        Ok(value) => {
            // As in IPython, a cell ending with `;` shows no value.
            let quiet = code.trim_end().ends_with(';');
            if !silent && !quiet && let Some(bundle) = display::value(&value, &session.type_name(&value)) {
                send(Event::Result(cell.execution_count, bundle));
            }
            send(Event::Done(json!({
                "status": "ok",
                "execution_count": cell.execution_count,
                "payload": [],
                "user_expressions": {},
            })));
        }
        Err(error) => {
            let (ename, evalue) = describe_error(&error);
            send(Event::Error { ename: ename.clone(), evalue: evalue.clone() });
            send(Event::Done(error_reply(cell.execution_count, &ename, &evalue)));
        }
    }
}

/// An error's name and its one line: `line L, column C: what` for a script error.
fn describe_error(error: &Error) -> (String, String) {
    match error {
        Error::Script { line, column, what, .. } => {
            let ename = if what == INTERRUPTED { "Interrupted" } else { "ScriptError" };
            let at = match (line, column) {
                (Some(l), Some(c)) => format!("line {l}, column {c}: "),
                (Some(l), None) => format!("line {l}: "),
                _ => String::new(),
            };
            (ename.into(), format!("{at}{what}"))
        }
        other => ("Error".into(), other.to_string()),
    }
}

fn error_reply(execution_count: usize, ename: &str, evalue: &str) -> Value {
    json!({
        "status": "error",
        "execution_count": execution_count,
        "ename": ename,
        "evalue": evalue,
        "traceback": [evalue],
    })
}

fn kernel_info() -> Value {
    json!({
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": "tunelab",
        "implementation_version": env!("CARGO_PKG_VERSION"),
        "language_info": {
            "name": "rhai",
            "version": "1",
            "mimetype": "text/x-rhai",
            "file_extension": ".rhai",
            // rhai reads like Rust: its lexers highlight rhai best among the common ones.
            "codemirror_mode": "rust",
            "pygments_lexer": "rust",
        },
        "banner": format!("tunelab {} — rhai cells over tunelab's script functions", env!("CARGO_PKG_VERSION")),
        "help_links": [],
        "debugger": false,
    })
}

impl Kernel {
    async fn reply(&self, socket: &mut RouterSocket, request: &Message, content: Value) {
        if let Some(frames) = request.reply(&self.session, content).to_frames(&self.signer)
            && let Err(e) = socket.send(frames).await
        {
            eprintln!("tunelab kernel: reply to {}: {e}", request.msg_type());
        }
    }

    /// A received message, or `None` (said on stderr) for one that is malformed or badly signed.
    fn parse(&self, frames: zeromq::ZmqMessage) -> Option<Message> {
        match Message::from_frames(frames, &self.signer) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("tunelab kernel: ignored: {e}");
                None
            }
        }
    }

    async fn shut_down(&self, socket: &mut RouterSocket, request: &Message) {
        let restart = request.content["restart"].as_bool().unwrap_or(false);
        let content = json!({ "status": "ok", "restart": restart });
        self.reply(socket, request, content.clone()).await;
        self.iopub.send(request, "shutdown_reply", content).await;
        self.iopub.status(request, "idle").await;
        self.stop_and_exit().await;
    }

    /// Stops a running cell where it can be stopped (a training at a step boundary, with its
    /// checkpoint), waits for it, a minute at most, then lets the kernel exit.
    async fn stop_and_exit(&self) {
        self.interrupt.store(true, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.running.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let _ = self.shutdown.send(()).await;
    }
}

async fn control_loop(mut socket: RouterSocket, kernel: Kernel) {
    while let Ok(frames) = socket.recv().await {
        let Some(request) = kernel.parse(frames) else { continue };
        kernel.iopub.status(&request, "busy").await;
        match request.msg_type() {
            "interrupt_request" => {
                kernel.interrupt.store(true, Ordering::SeqCst);
                kernel.reply(&mut socket, &request, json!({ "status": "ok" })).await;
            }
            "shutdown_request" => return kernel.shut_down(&mut socket, &request).await,
            "kernel_info_request" => kernel.reply(&mut socket, &request, kernel_info()).await,
            other => eprintln!("tunelab kernel: control: `{other}` is not supported"),
        }
        kernel.iopub.status(&request, "idle").await;
    }
}

async fn shell_loop(mut socket: RouterSocket, kernel: Kernel, jobs: std::sync::mpsc::Sender<Job>) {
    // After a cell fails (or is interrupted) with `stop_on_error`, the cells queued behind it
    // ("Run All": requests made before the failure, by their header's date) are answered
    // `aborted` instead of run, as IPython does. A request made after the failure runs.
    let mut failed_at: Option<std::time::SystemTime> = None;
    while let Ok(frames) = socket.recv().await {
        let Some(request) = kernel.parse(frames) else { continue };
        kernel.iopub.status(&request, "busy").await;
        let content = &request.content;
        let code = content["code"].as_str().unwrap_or_default().to_string();
        let cursor = content["cursor_pos"].as_u64().unwrap_or(code.chars().count() as u64) as usize;
        let reply = match request.msg_type() {
            "kernel_info_request" => Some(kernel_info()),
            "execute_request" if failed_at.is_some_and(|t| made_before(&request, t)) => {
                Some(json!({ "status": "aborted", "execution_count": Value::Null, "user_expressions": {}, "payload": [] }))
            }
            "execute_request" => {
                let silent = content["silent"].as_bool().unwrap_or(false);
                let store_history = content["store_history"].as_bool().unwrap_or(!silent);
                let reply = execute_request(&kernel, &request, &jobs, code, silent, store_history).await;
                let stop = reply["status"] == "error" && content["stop_on_error"].as_bool().unwrap_or(true);
                failed_at = stop.then(std::time::SystemTime::now);
                Some(reply)
            }
            "complete_request" => Some(ask(&jobs, |reply| Job::Complete { code, cursor, reply }).await),
            "inspect_request" => Some(ask(&jobs, |reply| Job::Inspect { code, cursor, reply }).await),
            "is_complete_request" => Some(match completeness(&code) {
                Completeness::Complete => json!({ "status": "complete" }),
                Completeness::Incomplete { depth } => json!({ "status": "incomplete", "indent": "    ".repeat(depth) }),
                Completeness::Invalid(_) => json!({ "status": "invalid" }),
            }),
            "comm_info_request" => Some(json!({ "status": "ok", "comms": {} })),
            "history_request" => Some(json!({ "status": "ok", "history": [] })),
            "shutdown_request" => return kernel.shut_down(&mut socket, &request).await,
            other => {
                eprintln!("tunelab kernel: shell: `{other}` is not supported");
                None
            }
        };
        if let Some(reply) = reply {
            kernel.reply(&mut socket, &request, reply).await;
        }
        kernel.iopub.status(&request, "idle").await;
    }
}

/// Whether a request was made before `time`, by its header's `date` (ISO 8601, as every Jupyter
/// client writes it); a request without a readable date is taken as made after.
fn made_before(request: &Message, time: std::time::SystemTime) -> bool {
    let date = request.header["date"].as_str().unwrap_or_default();
    humantime::parse_rfc3339_weak(date.trim_end_matches('Z').split('+').next().unwrap_or_default()).is_ok_and(|made| made < time)
}

/// Asks the session's thread for a reply (completion, inspection).
async fn ask(jobs: &std::sync::mpsc::Sender<Job>, job: impl FnOnce(oneshot::Sender<Value>) -> Job) -> Value {
    let (reply, answer) = oneshot::channel();
    if jobs.send(job(reply)).is_err() {
        return json!({ "status": "error", "ename": "SessionEnded", "evalue": "the session's thread has ended", "traceback": [] });
    }
    answer.await.unwrap_or_else(|_| json!({ "status": "error", "ename": "SessionEnded", "evalue": "the session's thread has ended", "traceback": [] }))
}

/// Runs a cell, publishing what it reports as it comes; returns the `execute_reply`.
async fn execute_request(
    kernel: &Kernel,
    request: &Message,
    jobs: &std::sync::mpsc::Sender<Job>,
    code: String,
    silent: bool,
    store_history: bool,
) -> Value {
    let (events, mut reports) = mpsc::unbounded_channel();
    let source = code.clone();
    if jobs.send(Job::Execute { code, silent, store_history, events }).is_err() {
        return error_reply(0, "SessionEnded", "the session's thread has ended; restart the kernel");
    }
    let iopub = &kernel.iopub;
    while let Some(event) = reports.recv().await {
        match event {
            Event::Started(count) if !silent => iopub.send(request, "execute_input", json!({ "code": source, "execution_count": count })).await,
            Event::Started(_) => {}
            Event::Stdout(text) if !silent => iopub.send(request, "stream", json!({ "name": "stdout", "text": text })).await,
            Event::Stdout(_) => {}
            Event::Display(data) => iopub.send(request, "display_data", json!({ "data": data, "metadata": {}, "transient": {} })).await,
            Event::Progress { display_id, bundle, first } => {
                let kind = if first { "display_data" } else { "update_display_data" };
                iopub.send(request, kind, json!({ "data": bundle, "metadata": {}, "transient": { "display_id": display_id } })).await
            }
            Event::Result(count, data) => iopub.send(request, "execute_result", json!({ "execution_count": count, "data": data, "metadata": {} })).await,
            Event::Error { ename, evalue } => {
                iopub.send(request, "error", json!({ "ename": ename, "evalue": evalue, "traceback": [evalue] })).await;
            }
            Event::Done(reply) => return reply,
        }
    }
    error_reply(0, "SessionEnded", "the session's thread has ended; restart the kernel")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_request_made_before_a_failure_is_known_by_its_date() {
        let request = super::Message {
            identities: Vec::new(),
            header: serde_json::json!({ "date": "2026-12-02T04:37:32.570254Z" }),
            parent_header: serde_json::json!({}),
            metadata: serde_json::json!({}),
            content: serde_json::json!({}),
            buffers: Vec::new(),
        };
        let after = humantime::parse_rfc3339("2026-12-02T04:37:33Z").unwrap();
        let before = humantime::parse_rfc3339("2026-12-02T04:37:32Z").unwrap();
        assert!(super::made_before(&request, after));
        assert!(!super::made_before(&request, before));
    }
}
