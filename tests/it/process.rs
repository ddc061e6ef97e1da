//! Process actors: Python actors whose handlers run in the main interpreter of a child
//! process. Real processes, real signals, real numpy.

use std::collections::HashMap;
use std::io::BufRead;
use std::time::{Duration, Instant};

use subactor::{
    AskError, ChildSpec, Death, FailurePolicy, Fault, Outcome, Placement, PyActor, PyRef, PythonActor, ReceiveError,
    Runtime, SendError, StartError, StopReason, Strategy, SupervisorSpec, Value,
};

use crate::common::{TIMEOUT, eventually, runtime, thread_count};

fn process(class: &str) -> PythonActor {
    PythonActor::new("procs", class).placement(Placement::Process)
}

fn spawn(rt: &Runtime, class: &str) -> PyRef {
    rt.spawn(process(class)).expect("the process actor starts")
}

fn ask(actor: &PyRef, msg: impl Into<Value>) -> Value {
    actor.blocking_ask(msg, TIMEOUT).expect("an answer")
}

fn pid_of(actor: &PyRef) -> i32 {
    i32::try_from(ask(actor, "pid").as_i64().expect("a pid")).expect("a pid fits")
}

/// The state letter (`R`, `S`, `Z`, ...) and parent pid of process `pid`, from
/// `/proc/<pid>/stat` (the fields after the command name, which may hold spaces).
fn state_and_parent(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit(')').next()?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// Whether a process runs (exists and is not a zombie).
fn alive(pid: i32) -> bool {
    state_and_parent(pid).is_some_and(|(state, _)| state != 'Z')
}

/// Every process descended from this one.
fn descendants() -> Vec<i32> {
    let mut parents: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if let Some((state, ppid)) = state_and_parent(pid) {
            if state != 'Z' {
                parents.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut found = Vec::new();
    let mut stack = vec![i32::try_from(std::process::id()).expect("pid")];
    while let Some(pid) = stack.pop() {
        for child in parents.get(&pid).into_iter().flatten() {
            found.push(*child);
            stack.push(*child);
        }
    }
    found.sort_unstable();
    found
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(Iterator::count).unwrap_or(0)
}

fn sigkill(pid: i32) {
    signal(pid, "KILL");
}

fn died<E>(outcome: &Outcome<Value, E>) -> Option<&Death> {
    match outcome {
        Outcome::Fault(Fault::Died(death)) => Some(death),
        _ => None,
    }
}

#[test]
fn a_process_actor_runs_in_the_main_interpreter_of_its_own_process() {
    let rt = runtime();
    let actor = spawn(&rt, "Where");
    assert_eq!(actor.placement(), Placement::Process);
    let pid = pid_of(&actor);
    assert_ne!(pid, i32::try_from(std::process::id()).expect("pid"), "it runs in another process");
    assert!(descendants().contains(&pid), "its process is a descendant of the runtime's");
    assert_eq!(ask(&actor, "main"), Value::Bool(true), "on that process's main thread");
    let Value::Actor(me) = ask(&actor, "self") else { panic!("self_ref() is a reference") };
    assert_eq!(me.id(), actor.id(), "self_ref() names the actor itself");
    assert_eq!(me.placement(), Placement::Process);
    actor.stop();
    assert_eq!(actor.blocking_wait_timeout(TIMEOUT), Some(StopReason::Normal));
    eventually("the child exits once its actor stops", || !alive(pid));
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_child_compiles_none_of_the_runtimes_own_python() {
    // The bootstrap's late parts (which format a handler's exception, among others) are
    // compiled and run once, in the template, before it forks: a child that needs
    // them compiles nothing of the runtime's.
    let rt = runtime();
    let actor = spawn(&rt, "Compiles");
    let raised = actor.blocking_ask("raise", TIMEOUT).expect_err("it raises");
    let exception = raised.handler_error().and_then(ReceiveError::exception).expect("an exception");
    assert_eq!(exception.type_name, "ValueError");
    assert!(exception.traceback.contains("raised on purpose"), "{}", exception.traceback);
    let Value::List(compiled) = ask(&actor, "compiled") else { panic!("a list") };
    let runtime_own: Vec<_> = compiled.iter().filter(|name| name.to_string().contains("subactor-host")).collect();
    assert!(runtime_own.is_empty(), "the child compiled the runtime's own code: {runtime_own:?}");
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_spare_warms_the_import_system_with_the_standard_librarys_module_and_forgets_it() {
    // A spare child imports a small module of the standard library while it waits (its
    // first import, whose copy-on-write faults its actor's import would otherwise take),
    // then takes it out of sys.modules. A file of the user's of that name, first on the
    // path, is never run: the spare takes the next module. A child forked for a spawn
    // that found no spare (the first, or any with no spares kept) does not warm up.
    // `import_audit`, preloaded, records every import.
    let shadow = crate::nats::temp_dir("shadow");
    std::fs::write(
        shadow.join("colorsys.py"),
        "import pathlib\npathlib.Path(__file__).with_name('ran').write_text('ran')\n",
    )
    .expect("write colorsys.py");
    let tests = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python").to_owned();
    let shadow_path = shadow.to_str().expect("a UTF-8 path").to_owned();
    let name = |value: &Value| value.to_string().trim_matches('"').to_owned();
    // What the children of `spawns` spawns imported before their actor's module, and
    // which of the warm-up's modules each had loaded then.
    let children = |path: Vec<String>, spares: usize, spawns: usize| {
        let rt = Runtime::builder()
            .python_path(path)
            .preload(["import_audit"])
            .spare_processes(spares)
            .build()
            .expect("the runtime starts");
        let mut seen = Vec::new();
        for _ in 0..spawns {
            let actor = spawn(&rt, "Where");
            let Value::List(answer) = ask(&actor, "imported") else { panic!("a list") };
            let [Value::List(imported), Value::List(loaded)] = &answer[..] else { panic!("two lists: {answer:?}") };
            let imported: Vec<String> = imported.iter().map(name).collect();
            let before = imported.iter().position(|n| n == "procs").map_or(&imported[..], |at| &imported[..at]);
            seen.push((before.to_vec(), loaded.iter().map(name).collect::<Vec<_>>()));
            actor.stop();
            actor.blocking_wait();
            // Time for the template to lend the next spare, and for it to warm up.
            std::thread::sleep(Duration::from_millis(100));
        }
        rt.shutdown().expect("shutdown");
        seen
    };

    // A spawn takes a spare once the template has lent one (the first spawn, and any
    // that comes before the next spare is lent, gets a child forked for it).
    let warmed_with = |seen: &[(Vec<String>, Vec<String>)], module: &str| {
        assert!(seen.iter().all(|(_, loaded)| loaded.is_empty()), "the warm-up's module stays loaded: {seen:?}");
        // (graphlib imports `types`, which 3.14's template may not have loaded.)
        assert!(
            seen.iter().all(|(before, _)| before.first().is_none_or(|first| first == module)),
            "a child imported something else than {module} first: {seen:?}"
        );
        assert!(seen.iter().any(|(before, _)| !before.is_empty()), "no spare warmed up with {module}: {seen:?}");
    };
    warmed_with(&children(vec![tests.clone()], 1, 4), "colorsys");

    let seen = children(vec![shadow_path, tests.clone()], 1, 4);
    assert!(!shadow.join("ran").exists(), "the user's colorsys.py ran: {seen:?}");
    warmed_with(&seen, "graphlib");

    let seen = children(vec![tests], 0, 3);
    assert!(seen.iter().all(|(before, _)| before.is_empty()), "a child forked for its spawn warmed up: {seen:?}");
    let _ = std::fs::remove_dir_all(&shadow);
}

#[test]
fn a_full_collection_in_a_child_leaves_the_pages_it_shares_with_the_template_shared() {
    // The template freezes what it made (gc.freeze) before it forks, so that a
    // collection in a child does not write to the objects it inherited: each write
    // would make a page of them the child's own. Without the freeze, the first full
    // collection in a child made ~4 MB of its memory private.
    let rt = runtime();
    for _ in 0..2 {
        let actor = spawn(&rt, "Where");
        let Value::List(figures) = ask(&actor, "collect") else { panic!("a list") };
        let [before, after, frozen] = &figures[..] else { panic!("three figures: {figures:?}") };
        let (before, after, frozen) = (before.as_i64(), after.as_i64(), frozen.as_i64());
        let (Some(before), Some(after), Some(frozen)) = (before, after, frozen) else { panic!("integers") };
        assert!(after - before < 1024, "a collection made {} kB private ({before} -> {after} kB)", after - before);
        assert!(frozen > 1000, "the template froze {frozen} objects");
        actor.stop();
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn numpy_imports_and_computes_in_a_process_actor() {
    let rt = runtime();
    let actor = spawn(&rt, "Where");
    match actor.blocking_ask("numpy", TIMEOUT) {
        Ok(sum) => assert_eq!(sum, Value::Float(999_000.0)),
        Err(error) => panic!(
            "numpy must import in a process actor (scripts/test puts its virtualenv's site-packages on \
             PYTHONPATH): {error:?}"
        ),
    }
    // The same class in an interpreter refuses numpy, naming it.
    let interp = rt.spawn(PythonActor::new("procs", "Where")).expect("spawn");
    let refused = interp.blocking_ask("numpy", TIMEOUT).expect_err("numpy is refused in an interpreter");
    let exception = refused.handler_error().and_then(ReceiveError::exception).expect("an exception");
    assert_eq!(exception.type_name, "ImportError");
    assert!(exception.message.contains("numpy"), "{}", exception.message);
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_start_error_in_the_child_is_a_spawn_error_with_its_traceback() {
    let rt = runtime();
    let error = rt.spawn(PythonActor::new("procs", "NoSuchClass").placement(Placement::Process)).expect_err("fails");
    let Some(StartError::MissingClass { class, .. }) = error.start_error() else { panic!("{error:?}") };
    assert_eq!(class, "NoSuchClass");
    let error = rt.spawn(PythonActor::new("actors", "RaisingInit").placement(Placement::Process)).expect_err("fails");
    let Some(StartError::Constructor { exception, .. }) = error.start_error() else { panic!("{error:?}") };
    assert!(exception.traceback.contains("__init__"), "{}", exception.traceback);
    assert!(descendants().len() <= 2, "the failed children are gone: {:?}", descendants());
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_crash_fails_only_that_actor_and_its_supervisor_restarts_it_with_the_queue_intact() {
    let rt = runtime();
    let sup = rt
        .spawn(
            SupervisorSpec::new(Strategy::OneForOne)
                .intensity(10, Duration::from_secs(60))
                .child(ChildSpec::new(process("Crasher")))
                .child(ChildSpec::new(PythonActor::new("actors", "Echo"))),
        )
        .expect("supervisor");
    let crasher = sup.child::<PyActor>(0).expect("crasher");
    let echo = sup.child::<PyActor>(1).expect("echo");
    let first = pid_of(&crasher);
    let (tx, outcomes) = flume::unbounded();
    let send = |msg: Value, tag: &'static str| {
        let tx = tx.clone();
        crasher.blocking_ask_then(msg, move |outcome| tx.send((tag, outcome)).expect("send")).expect("queued");
    };
    send(Value::from(("segfault_after", 0.3)), "crash");
    // Queued behind the crash: served by the next incarnation.
    for tag in ["a", "b", "c"] {
        send(Value::from(tag), tag);
    }
    let mut seen = HashMap::new();
    while seen.len() < 4 {
        // The interpreter actor beside it answers all along.
        assert_eq!(echo.blocking_ask("ping", TIMEOUT).expect("echo answers"), Value::from("ping"));
        if let Ok((tag, outcome)) = outcomes.recv_timeout(Duration::from_millis(5)) {
            seen.insert(tag, outcome);
        }
    }
    let death = died(&seen["crash"]).unwrap_or_else(|| panic!("the asker gets the crash: {:?}", seen["crash"]));
    assert!(matches!(death, Death::Signal { name, .. } if &**name == "SIGSEGV"), "{death:?}");
    for (i, tag) in ["a", "b", "c"].into_iter().enumerate() {
        let Outcome::Replied(reply) = &seen[tag] else { panic!("{tag}: {:?}", seen[tag]) };
        assert_eq!(*reply, Value::from((tag, i64::try_from(i + 1).expect("small"))), "a fresh instance served it");
    }
    assert_eq!(crasher.restarts(), 1);
    let second = pid_of(&crasher);
    assert_ne!(first, second, "the restart runs in a new process");
    assert!(!alive(first), "the crashed process is gone");
    assert_eq!(echo.restarts(), 0, "one-for-one: the neighbour was not touched");
    rt.shutdown().expect("shutdown");
    eventually("no child is left after shutdown", || descendants().is_empty());
}

#[test]
fn exits_and_outside_kills_are_faults_that_say_how_the_process_ended() {
    let rt = runtime();
    let restarting = rt.spawn(process("Crasher").on_failure(FailurePolicy::Restart)).expect("spawn");
    let exited = restarting.blocking_ask("exit", TIMEOUT);
    assert!(matches!(exited, Err(AskError::Fault(Fault::Died(Death::Exited(7))))), "{exited:?}");
    let pid = pid_of(&restarting);
    sigkill(pid);
    eventually("an outside SIGKILL between messages restarts the actor", || restarting.restarts() == 2);
    assert_ne!(pid_of(&restarting), pid);

    // Unsupervised and resuming: a dead process is not resumed, the actor stops.
    let resuming = spawn(&rt, "Crasher");
    let (tx, downs) = flume::bounded(1);
    resuming.monitor(move |down| tx.send(down.clone()).expect("send"));
    sigkill(pid_of(&resuming));
    let down = downs.recv_timeout(TIMEOUT).expect("the monitor hears");
    let StopReason::Failed(why) = &down.reason else { panic!("{down:?}") };
    assert!(why.contains("killed by signal 9 (SIGKILL)"), "{why}");
    let sent = resuming.try_tell("late");
    assert!(matches!(sent, Err(SendError::Stopped(_))), "{sent:?}");
    rt.shutdown().expect("shutdown");
}

#[test]
fn an_ask_given_up_at_its_timeout_is_finished_by_the_actor_and_the_next_gets_its_own_answer() {
    // An ask to an idle process actor runs on the asking thread, which talks to the
    // child itself; at its timeout the actor's thread takes the rest of the round trip
    // over, so the child's late answer is not taken for the next ask's.
    let rt = runtime();
    let sleeper = spawn(&rt, "Sleeper");
    let pid = pid_of(&sleeper);
    for _ in 0..3 {
        let started = Instant::now();
        let late = sleeper.blocking_ask(0.3, Duration::from_millis(50));
        assert!(matches!(late, Err(AskError::Timeout)), "{late:?}");
        assert!(started.elapsed() < Duration::from_millis(250), "the asker left at its timeout");
        assert_eq!(ask(&sleeper, 0.01), Value::from(0.01), "this ask's answer, not the late one");
    }
    assert_eq!(pid_of(&sleeper), pid, "the same child throughout");
    assert_eq!(sleeper.restarts(), 0);
    rt.shutdown().expect("shutdown");
}

#[test]
fn kill_interrupts_a_runaway_handler_and_sigkills_a_child_that_ignores_it() {
    let rt = runtime();
    for (what, grace) in [("spin", Duration::from_secs(30)), ("stuck", Duration::from_millis(300))] {
        let actor = rt.spawn(process("Sleeper").kill_grace(grace)).expect("spawn");
        let pid = pid_of(&actor);
        let (tx, outcome) = flume::bounded(1);
        actor.blocking_ask_then(what, move |o| tx.send(o).expect("send")).expect("ask");
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        actor.kill();
        let outcome = outcome.recv_timeout(TIMEOUT).expect("the asker hears");
        assert!(matches!(outcome, Outcome::Fault(Fault::Killed)), "{what}: {outcome:?}");
        assert_eq!(actor.blocking_wait_timeout(TIMEOUT), Some(StopReason::Killed));
        if what == "spin" {
            assert!(started.elapsed() < Duration::from_secs(10), "interrupted, not SIGKILLed after 30 s");
        }
        eventually("the killed actor's child is gone", || !alive(pid));
    }
    rt.shutdown().expect("shutdown");
    eventually("no child is left", || descendants().is_empty());
}

#[test]
fn time_limits_interrupt_handlers_in_children() {
    let rt = runtime();
    let limited = rt.spawn(process("Crasher").time_limit(Duration::from_millis(200))).expect("spawn");
    let sleeper = rt.spawn(process("Sleeper").time_limit(Duration::from_millis(200))).expect("spawn");
    let spun = sleeper.blocking_ask("spin", TIMEOUT);
    assert!(matches!(spun, Err(AskError::Fault(Fault::TimeLimit(_)))), "{spun:?}");
    assert_eq!(ask(&sleeper, "after"), Value::from("after"), "resumed in the same process");
    assert_eq!(sleeper.restarts(), 0);
    drop(limited);

    // A handler that ignores the interrupt: its process is killed after the grace
    // period, and the supervisor restarts the actor in a new one.
    let sup = rt
        .spawn(SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new(
            process("Sleeper").time_limit(Duration::from_millis(200)).kill_grace(Duration::from_millis(200)),
        )))
        .expect("supervisor");
    let stuck = sup.child::<PyActor>(0).expect("child");
    let answer = stuck.blocking_ask("stuck", TIMEOUT);
    assert!(matches!(answer, Err(AskError::Fault(Fault::TimeLimit(_)))), "{answer:?}");
    eventually("restarted", || stuck.restarts() == 1);
    assert_eq!(ask(&stuck, "again"), Value::from("again"));
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_memory_limit_makes_a_runaway_allocation_a_failure_of_that_actor() {
    let rt = runtime();
    let hog = rt.spawn(process("Hog").memory_limit(512 << 20)).expect("spawn");
    assert_eq!(ask(&hog, 16), Value::from(16 << 20));
    let failed = hog.blocking_ask(4096, TIMEOUT).expect_err("4 GiB is over the limit");
    let exception = failed.handler_error().and_then(ReceiveError::exception).expect("an exception");
    assert_eq!(exception.type_name, "MemoryError");
    assert_eq!(ask(&hog, 16), Value::from(16 << 20), "the actor carries on");
    rt.shutdown().expect("shutdown");
}

#[test]
fn mailboxes_order_backpressure_names_and_dead_letters_are_the_same() {
    let rt = runtime();
    let recorder =
        rt.spawn(PythonActor::new("actors", "Recorder").placement(Placement::Process).name("recorder")).expect("spawn");
    for n in 0..200 {
        recorder.blocking_tell(n).expect("tell");
    }
    let expected: Vec<Value> = (0..200).map(Value::from).collect();
    assert_eq!(ask(&recorder, "get"), Value::List(expected), "one sender's messages arrive in order");
    assert_eq!(rt.lookup::<PyActor>("recorder").map(|r| r.id()), Some(recorder.id()));

    let slow = rt.spawn(process("Sleeper").mailbox_capacity(2)).expect("spawn");
    let (tx, done) = flume::bounded(1);
    slow.blocking_ask_then(0.5, move |o| tx.send(o).expect("send")).expect("ask");
    eventually("the sleeper is busy", || slow.mailbox_len() == 0);
    std::thread::sleep(Duration::from_millis(50));
    slow.try_tell(1).expect("room");
    slow.try_tell(2).expect("room");
    assert!(matches!(slow.try_tell(3), Err(SendError::Full(_))), "a full mailbox hands the message back");
    assert!(matches!(done.recv_timeout(TIMEOUT), Ok(Outcome::Replied(_))));

    // Stop drains the queue; afterwards sends are refused and counted as dead letters.
    for n in 0..5 {
        slow.blocking_tell(format!("queued {n}")).expect("tell");
    }
    slow.stop();
    assert_eq!(slow.blocking_wait_timeout(TIMEOUT), Some(StopReason::Normal));
    let before = rt.dead_letters().count();
    assert!(matches!(slow.try_tell(9), Err(SendError::Stopped(_))));
    assert_eq!(rt.dead_letters().count(), before + 1);
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_process_actor_pinned_to_a_core_has_every_thread_of_its_child_there() {
    let rt = runtime();
    let actor = rt.spawn(process("Where").pin_to_core(0)).expect("the process actor starts");
    let Value::List(threads) = ask(&actor, "affinity") else { panic!("expected a list of threads") };
    // The actor's thread and the control thread (started before the child knew its
    // actor, so pinned separately) at least.
    assert!(threads.len() >= 2, "{threads:?}");
    for cores in &threads {
        assert_eq!(cores, &Value::List(vec![Value::Int(0)]), "every thread on core 0: {threads:?}");
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_spare_killed_from_outside_is_never_given_an_actor() {
    let rt = runtime();
    // The first spawn starts the template, which forks a spare and lends it to the
    // runtime in advance.
    let first = spawn(&rt, "Where");
    let first_pid = pid_of(&first);
    let me = i32::try_from(std::process::id()).expect("pid");
    // The template is this process's child; the spare is the template's.
    let template = descendants().into_iter().find(|pid| parent_of(*pid) == me).expect("the template runs");
    let spares_now =
        || -> Vec<i32> { descendants().into_iter().filter(|pid| *pid != first_pid && parent_of(*pid) != me).collect() };
    for round in 0..2 {
        eventually("a spare is forked", || !spares_now().is_empty());
        let spares = spares_now();
        // The template is stopped, so it can neither report the spares' ends nor fork
        // others until it is continued: the runtime holds dead spares meanwhile.
        signal(template, "STOP");
        for pid in &spares {
            sigkill(*pid);
        }
        // Every thread gone, not only the main one a zombie: a spare's other thread may
        // still be ending, its sockets still open, when the main one is already a zombie.
        eventually("the spares have ended", || spares.iter().all(|pid| !alive(*pid) && threads_of(*pid) <= 1));
        let resume = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            signal(template, "CONT");
        });
        let actor = spawn(&rt, "Where");
        resume.join().expect("the template is continued");
        let pid = pid_of(&actor);
        assert!(!spares.contains(&pid), "round {round}: the actor runs in a live process, not a killed spare");
        assert_eq!(ask(&actor, 7), Value::Int(7));
        actor.stop();
        assert_eq!(actor.blocking_wait_timeout(TIMEOUT), Some(StopReason::Normal));
    }
    first.stop();
    first.blocking_wait();
    rt.shutdown().expect("shutdown");
}

/// Sends signal `name` (`KILL`, `STOP`, `CONT`) to process `pid`.
fn signal(pid: i32, name: &str) {
    let status =
        std::process::Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

/// How many threads process `pid` has left (a zombie's main thread counts; 0 once gone).
fn threads_of(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(Iterator::count).unwrap_or(0)
}

/// The parent of process `pid`, or 0.
fn parent_of(pid: i32) -> i32 {
    state_and_parent(pid).map_or(0, |(_, parent)| parent)
}

#[test]
fn one_hundred_spawn_and_stop_cycles_leave_no_process_thread_or_descriptor_behind() {
    let rt = runtime();
    // The first spawn starts the template (a thread and a socket stay for the runtime).
    let warm = spawn(&rt, "Where");
    warm.stop();
    warm.blocking_wait();
    eventually("the warm-up child is gone", || descendants().len() <= 2);
    let (threads, fds, processes) = (thread_count(), fd_count(), descendants());
    let mut pids = Vec::new();
    for _ in 0..100 {
        let actor = spawn(&rt, "Where");
        pids.push(pid_of(&actor));
        actor.stop();
        assert_eq!(actor.blocking_wait_timeout(TIMEOUT), Some(StopReason::Normal));
    }
    eventually("every child is gone", || pids.iter().all(|pid| !alive(*pid)));
    eventually("threads back to what they were", || thread_count() <= threads);
    assert_eq!(fd_count(), fds, "descriptors back to what they were");
    assert_eq!(descendants().len(), processes.len(), "the template and its spare only: {processes:?}");
    rt.shutdown().expect("shutdown");
    eventually("no process is left after shutdown", || descendants().is_empty());
}

/// The environment variable that makes [`killed_parent_helper`] run.
const HELPER: &str = "SUBACTOR_TEST_KILLED_PARENT";

/// Not a test on its own: the parent process of
/// [`a_parent_killed_with_sigkill_leaves_no_child_behind`], which runs this binary with
/// [`HELPER`] set, reads the pids it prints, and kills it.
#[test]
#[ignore = "run by a_parent_killed_with_sigkill_leaves_no_child_behind"]
fn killed_parent_helper() {
    if std::env::var_os(HELPER).is_none() {
        return;
    }
    let rt = runtime();
    let actors: Vec<PyRef> = (0..3).map(|_| spawn(&rt, "Where")).collect();
    for actor in &actors {
        assert_eq!(ask(actor, "main"), Value::Bool(true));
    }
    // A child busy in a handler reads nothing: only its parent-death signal ends it.
    let busy = spawn(&rt, "Sleeper");
    busy.blocking_tell("spin").expect("tell");
    let pids: Vec<String> = descendants().iter().map(ToString::to_string).collect();
    println!("descendants: {}", pids.join(" "));
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_parent_killed_with_sigkill_leaves_no_child_behind() {
    let mut helper = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .args(["--exact", "process::killed_parent_helper", "--ignored", "--nocapture", "--test-threads", "1"])
        .env(HELPER, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the helper starts");
    let stdout = helper.stdout.take().expect("stdout");
    let pids: Vec<i32> = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split_once("descendants: ").map(|(_, pids)| pids.to_owned()))
        .expect("the helper reports its processes")
        .split_whitespace()
        .map(|p| p.parse().expect("a pid"))
        .collect();
    assert!(pids.len() >= 5, "a template and four children at least: {pids:?}");
    assert!(pids.iter().all(|pid| alive(*pid)));
    helper.kill().expect("SIGKILL the parent");
    helper.wait().expect("reaped");
    eventually("every process of the killed parent is gone", || pids.iter().all(|pid| !alive(*pid)));
    let _ = thread_count;
}

// ---- buffers across processes, without copies ------------------------------------------

/// (inode, offset) of a buffer's bytes in its segment's memfd, in this process.
fn memfd_position(buffer: &subactor::Buffer) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let fd = buffer.segment().fd().expect("a memfd segment").try_clone_to_owned().expect("dup");
    let inode = std::fs::File::from(fd).metadata().expect("fstat").ino();
    (inode, buffer.segment_offset() as u64)
}

fn big_runtime() -> Runtime {
    Runtime::builder()
        .python_path([concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python")])
        .arena(subactor::ArenaConfig::new().with_max_bytes(3 << 30))
        .build()
        .expect("the runtime starts")
}

#[test]
fn a_gigabyte_buffer_goes_to_a_process_actor_and_back_without_a_copy() {
    let rt = big_runtime();
    let actor = spawn(&rt, "Shared");
    let mut draft = rt.arena().alloc(1 << 30).expect("1 GiB");
    draft[..4].copy_from_slice(&[1, 2, 3, 4]);
    let buffer = draft.freeze();
    let (inode, offset) = memfd_position(&buffer);
    let rss_before = crate::common::rss_kib();

    // The child's view is a read-only mapping of the same memfd, at the same offset.
    let Value::Tuple(seen) = ask(&actor, ("where", Value::Buffer(buffer.clone()))) else { panic!("a tuple") };
    let [child_inode, child_offset, perms, head, len, writeable] = <[Value; 6]>::try_from(seen).expect("6 items");
    let (child_inode, child_offset) = (child_inode.as_i64().expect("int"), child_offset.as_i64().expect("int"));
    let perms = perms.as_str().expect("str").to_owned();
    let (head, len) = (head, len.as_i64().expect("int"));
    let Value::Bool(writeable) = writeable else { panic!("a bool") };
    assert_eq!((child_inode as u64, child_offset as u64), (inode, offset), "the same pages");
    assert!(perms.starts_with("r-"), "mapped read-only: {perms}");
    assert_eq!(head, Value::bytes(vec![1, 2, 3, 4]));
    assert_eq!(len, 1 << 30);
    assert!(!writeable, "numpy sees a read-only array");

    // Sent back, it is still the same pages.
    let Value::Buffer(back) = ask(&actor, ("echo", Value::Buffer(buffer.clone()))) else { panic!("a buffer") };
    assert_eq!(back.len(), 1 << 30);
    assert_eq!(&back[..4], &[1, 2, 3, 4]);
    assert_eq!(memfd_position(&back), (inode, offset));
    let grown = crate::common::rss_kib().saturating_sub(rss_before);
    assert!(grown < 64 << 10, "this process's memory grew by {grown} KiB, not by the payload");
    drop((buffer, back));
    eventually("the buffer's memory returns once every process is done", || rt.arena().stats().buffers_live == 0);
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_buffer_the_child_is_done_with_is_given_back_by_the_time_its_answer_comes() {
    let rt = runtime();
    let actor = spawn(&rt, "Shared");
    // Dropped by the handler: back with the answer (no wait for another frame).
    let buffer = rt.arena().copy_from(&[7; 4096]).expect("buffer");
    assert_eq!(ask(&actor, ("len", Value::Buffer(buffer))), Value::from(4096));
    assert_eq!(rt.arena().stats().buffers_live, 0, "given back with the answer");
    // Kept by the actor: still lent after the answer, back with the answer of the
    // message whose handler lets it go.
    for n in 0..2u8 {
        let buffer = rt.arena().copy_from(&[n; 4096]).expect("buffer");
        assert_eq!(ask(&actor, ("hold", Value::Buffer(buffer))), Value::from(i64::from(n) + 1));
    }
    assert_eq!(rt.arena().stats().buffers_live, 2, "the child holds both");
    assert_eq!(ask(&actor, ("let go",)), Value::from(0));
    let stats = rt.arena().stats();
    assert_eq!((stats.buffers_live, stats.bytes_live), (0, 0), "given back with the answer");
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_child_killed_while_holding_views_gives_the_memory_back() {
    let rt = runtime();
    let actor = rt.spawn(process("Shared").on_failure(FailurePolicy::Restart)).expect("spawn");
    for n in 0..3 {
        let buffer = rt.arena().copy_from(&[n; 100_000]).expect("buffer");
        assert_eq!(ask(&actor, ("hold", Value::Buffer(buffer))), Value::from(i64::from(n) + 1));
    }
    assert_eq!(rt.arena().stats().buffers_live, 3, "the child holds all three");
    let pid = {
        let v = actor.blocking_ask(("pid",), TIMEOUT).expect("pid");
        i32::try_from(v.as_i64().expect("int")).expect("pid")
    };
    sigkill(pid);
    eventually("the arena is back at zero", || {
        let stats = rt.arena().stats();
        stats.buffers_live == 0 && stats.bytes_live == 0
    });
    eventually("the actor was restarted", || actor.restarts() == 1);
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_process_actor_allocates_fills_and_freezes_a_buffer_that_outlives_it() {
    let rt = runtime();
    let actor = spawn(&rt, "Shared");
    let Value::Buffer(made) = ask(&actor, ("alloc", 1 << 20, Value::bytes(b"abcd".to_vec()))) else {
        panic!("a buffer")
    };
    assert_eq!(made.len(), 1 << 20);
    assert_eq!(&made[..4], b"abcd");
    assert_eq!(rt.arena().stats().buffers_live, 0, "the child's memory, not this arena's");
    // Passed on to another process actor without a copy, it reads the same bytes.
    let other = spawn(&rt, "Shared");
    let seen = ask(&other, ("where", Value::Buffer(made.clone())));
    let Value::Tuple(parts) = seen else { panic!("a tuple") };
    assert_eq!(parts[3], Value::bytes(b"abcd".to_vec()));
    // The child that made it goes; its memory stays while a handle exists.
    let pid = i32::try_from(ask(&actor, ("pid",)).as_i64().expect("int")).expect("pid");
    actor.kill();
    actor.blocking_wait_timeout(TIMEOUT).expect("stops");
    eventually("the child is gone", || !alive(pid));
    assert_eq!(&made[..4], b"abcd");
    rt.shutdown().expect("shutdown");
}

#[test]
fn an_unfrozen_buffer_cannot_be_sent_from_a_process_actor() {
    let rt = runtime();
    let actor = spawn(&rt, "Shared");
    let echo = rt.spawn(PythonActor::new("actors", "Echo")).expect("echo");
    let answer = ask(&actor, ("unfrozen", Value::Actor(echo.into())));
    let (kind, message): (String, String) = answer.try_into().expect("an error description");
    assert_eq!(kind, "TypeError", "{message}");
    assert!(message.contains("freeze()"), "{message}");
    rt.shutdown().expect("shutdown");
}

// ---- automatic placement ---------------------------------------------------------------

#[test]
fn auto_placement_runs_pure_python_in_an_interpreter_and_refusing_modules_in_a_process() {
    let rt = runtime();
    // The default placement is auto.
    let pure = rt.spawn(PythonActor::new("actors", "Echo")).expect("spawn");
    assert_eq!(pure.placement(), Placement::Interpreter);
    let refusing = rt.spawn(PythonActor::new("refuses_subinterpreters", "Anything")).expect("spawn");
    assert_eq!(refusing.placement(), Placement::Process, "faulthandler refuses interpreters");
    assert_eq!(refusing.blocking_ask("works", TIMEOUT).expect("ask"), Value::from("works"));
    // Remembered per class: the next spawn goes straight to a process, and restarts
    // stay there.
    let again = rt.spawn(PythonActor::new("refuses_subinterpreters", "Anything").on_failure(FailurePolicy::Restart));
    let again = again.expect("spawn");
    assert_eq!(again.placement(), Placement::Process);
    // Explicit placements are kept as asked.
    let strict = rt.spawn(PythonActor::new("refuses_subinterpreters", "Anything").placement(Placement::Interpreter));
    assert!(matches!(
        strict.map(drop).expect_err("strict").start_error(),
        Some(StartError::IncompatibleExtension { .. })
    ));
    let forced = rt.spawn(PythonActor::new("actors", "Echo").placement(Placement::Process)).expect("spawn");
    assert_eq!(forced.placement(), Placement::Process);
    rt.shutdown().expect("shutdown");
}
