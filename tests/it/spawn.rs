//! Spawning Python actors, and every way it can fail.

use subactor::{PythonActor, Runtime, SpawnError, StartError, Value};

use crate::common::{TIMEOUT, runtime, spawn};

#[test]
fn actors_run_in_distinct_interpreters_with_isolated_globals() {
    let rt = runtime();
    let a = spawn(&rt, "Whoami");
    let b = spawn(&rt, "Whoami");
    let id_a = a.blocking_ask((), TIMEOUT).expect("ask a");
    let id_b = b.blocking_ask((), TIMEOUT).expect("ask b");
    assert_ne!(id_a, id_b, "each actor has its own interpreter");
    assert_ne!(id_a, Value::Int(0), "an actor never runs in the main interpreter");

    let g1 = spawn(&rt, "Globals");
    let g2 = spawn(&rt, "Globals");
    for expected in 1..=3 {
        assert_eq!(g1.blocking_ask((), TIMEOUT).expect("g1"), Value::from(expected));
    }
    assert_eq!(g2.blocking_ask((), TIMEOUT).expect("g2"), Value::from(1), "module globals are per interpreter");
    rt.shutdown().expect("shutdown");
}

#[test]
fn interpreters_do_not_share_a_gil() {
    // One actor spins in pure Python holding its GIL (switch interval 1000 s) until the
    // other writes a byte to shared memory. With a shared GIL the writer would be stuck
    // until the spinner gave up; with one GIL per interpreter both run at once.
    let rt = runtime();
    let file = std::env::temp_dir().join(format!("subactor-gil-{}", std::process::id()));
    std::fs::write(&file, [0u8]).expect("shared file");
    let path = file.to_string_lossy().into_owned();
    let spinner = spawn(&rt, "SpinOnSharedMemory");
    let writer = spawn(&rt, "WriteSharedMemory");
    let waiting = {
        let (spinner, path) = (spinner.clone(), path.clone());
        std::thread::spawn(move || spinner.blocking_ask((path, 20.0), TIMEOUT))
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(writer.blocking_ask(path, TIMEOUT).expect("write"), Value::Bool(true));
    let seen = waiting.join().expect("join").expect("spin");
    std::fs::remove_file(&file).ok();
    assert_eq!(seen, Value::Bool(true), "the spinner must see the write while it holds its GIL");
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_module_can_be_given_as_a_file_path() {
    let rt = runtime();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/actors.py");
    let counter = rt.spawn(PythonActor::new(path, "Counter").args((10,))).expect("spawn from a path");
    assert_eq!(counter.blocking_ask(5, TIMEOUT).expect("ask"), Value::from(15));
    rt.shutdown().expect("shutdown");
}

/// An actor's module is compiled once per process, not once per spawn (where no `.pyc`
/// is read), and never comes from the cache once its source changed, even at the same
/// size and modification time (which would fool a `.pyc`).
#[test]
fn compiled_source_is_shared_by_interpreters_and_never_stale() {
    let dir = std::env::temp_dir().join(format!("subactor-codecache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let name = format!("compiled_once_{}", std::process::id());
    let path = dir.join(format!("{name}.py"));
    // "\d" is an invalid escape: compiling the module raises a SyntaxWarning.
    let version = |value: &str| format!("VALUE = {value:?}\nPATTERN = \"\\d\"\n");
    std::fs::write(&path, version("one")).expect("version one written");
    let rt = Runtime::builder()
        .python_path([
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python").to_owned(),
            dir.to_string_lossy().into_owned(),
        ])
        .build()
        .expect("the runtime starts");
    let import = || {
        let actor =
            rt.spawn(PythonActor::new("actors", "CompileWarnings").args(name.as_str())).expect("the actor starts");
        let answer = actor.blocking_ask((), TIMEOUT).expect("ask");
        actor.stop();
        actor.blocking_wait();
        answer
    };
    let answer = |warnings: i64, value: &str| Value::Tuple(vec![Value::from(warnings), Value::from(value)]);
    assert_eq!(import(), answer(1, "one"), "the first interpreter compiles the module");
    assert_eq!(import(), answer(0, "one"), "the next one loads the code the first compiled");

    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).expect("the module's mtime");
    std::fs::write(&path, version("two")).expect("version two written, at the same size");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_modified(modified))
        .expect("the old mtime restored");
    assert_eq!(import(), answer(1, "two"), "a changed source is compiled anew");
    assert_eq!(import(), answer(0, "two"), "and then shared");
    rt.shutdown().expect("shutdown");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn constructor_arguments_arrive() {
    let rt = runtime();
    let one = rt.spawn(PythonActor::new("actors", "Counter").args((100,))).expect("tuple of one");
    assert_eq!(one.blocking_ask(1, TIMEOUT).expect("ask"), Value::from(101));
    let single = rt.spawn(PythonActor::new("actors", "Counter").args(7)).expect("a single value");
    assert_eq!(single.blocking_ask(1, TIMEOUT).expect("ask"), Value::from(8));
    let none = rt.spawn(PythonActor::new("actors", "Counter").args(())).expect("no arguments");
    assert_eq!(none.blocking_ask(1, TIMEOUT).expect("ask"), Value::from(1));
    rt.shutdown().expect("shutdown");
}

fn start_error<T: std::fmt::Debug>(result: Result<T, SpawnError<StartError>>) -> StartError {
    match result {
        Err(SpawnError::Start(e)) => e,
        other => panic!("expected a start error, got {other:?}"),
    }
}

#[test]
fn a_module_that_fails_to_import_is_a_spawn_error_with_its_traceback() {
    let rt = runtime();
    match start_error(rt.spawn(PythonActor::new("broken_import", "Anything"))) {
        StartError::Import { module, exception } => {
            assert_eq!(module, "broken_import");
            assert_eq!(exception.type_name, "RuntimeError");
            assert_eq!(exception.message, "this module is broken on purpose");
            assert!(exception.traceback.contains("broken_import.py"), "{}", exception.traceback);
            assert!(exception.traceback.contains("in _fail"), "{}", exception.traceback);
        }
        other => panic!("expected Import, got {other:?}"),
    }
    match start_error(rt.spawn(PythonActor::new("no_such_module_anywhere", "X"))) {
        StartError::Import { exception, .. } => {
            assert_eq!(exception.type_name, "ModuleNotFoundError")
        }
        other => panic!("expected Import, got {other:?}"),
    }
    match start_error(rt.spawn(PythonActor::new("/nonexistent/dir/actor.py", "X"))) {
        StartError::Import { exception, .. } => {
            assert_eq!(exception.type_name, "FileNotFoundError");
            assert!(exception.message.contains("/nonexistent/dir/actor.py"));
        }
        other => panic!("expected Import, got {other:?}"),
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_missing_class_is_a_spawn_error() {
    let rt = runtime();
    match start_error(rt.spawn(PythonActor::new("actors", "NoSuchClass"))) {
        StartError::MissingClass { module, class, exception } => {
            assert_eq!((module.as_str(), class.as_str()), ("actors", "NoSuchClass"));
            assert_eq!(exception.type_name, "AttributeError");
            assert!(exception.message.contains("'NoSuchClass'"), "{}", exception.message);
        }
        other => panic!("expected MissingClass, got {other:?}"),
    }
    match start_error(rt.spawn(PythonActor::new("actors", "NOT_A_CLASS"))) {
        StartError::MissingClass { exception, .. } => assert_eq!(exception.type_name, "TypeError"),
        other => panic!("expected MissingClass, got {other:?}"),
    }
    match start_error(rt.spawn(PythonActor::new("actors", "NoReceive"))) {
        StartError::NoReceive { class } => assert_eq!(class, "NoReceive"),
        other => panic!("expected NoReceive, got {other:?}"),
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_raising_constructor_is_a_spawn_error_with_its_traceback() {
    let rt = runtime();
    match start_error(rt.spawn(PythonActor::new("actors", "RaisingInit").args((1, "two")))) {
        StartError::Constructor { class, exception } => {
            assert_eq!(class, "RaisingInit");
            assert_eq!(exception.type_name, "RuntimeError");
            assert_eq!(exception.message, "refusing to start with (1, 'two')");
            assert!(exception.traceback.contains("in __init__"), "{}", exception.traceback);
        }
        other => panic!("expected Constructor, got {other:?}"),
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn an_extension_that_refuses_subinterpreters_is_named() {
    let rt = runtime();
    // The interpreter placement is strict (the default, auto, would start these in a
    // process: see process.rs).
    for spec in [PythonActor::new("refuses_subinterpreters", "Anything"), PythonActor::new("actors", "LazyRefusal")] {
        let err = start_error(rt.spawn(spec.placement(subactor::Placement::Interpreter)));
        match &err {
            StartError::IncompatibleExtension { module, exception } => {
                assert_eq!(module, "faulthandler");
                assert_eq!(exception.type_name, "ImportError");
            }
            other => panic!("expected IncompatibleExtension, got {other:?}"),
        }
        assert!(err.to_string().contains("\"faulthandler\""), "{err}");
    }
    // The process is fine, and so are other actors.
    let echo = spawn(&rt, "Echo");
    assert_eq!(echo.blocking_ask("still here", TIMEOUT).expect("ask"), Value::from("still here"));
    rt.shutdown().expect("shutdown");
}

#[test]
fn unconvertible_constructor_arguments_are_a_spawn_error() {
    let rt = runtime();
    let key_is_a_list = Value::Dict(vec![(Value::List(vec![]), Value::None)]);
    match start_error(rt.spawn(PythonActor::new("actors", "Counter").args((key_is_a_list,)))) {
        StartError::Arguments(e) => assert!(e.to_string().contains("unhashable"), "{e}"),
        other => panic!("expected Arguments, got {other:?}"),
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn names_are_unique_and_actors_can_be_looked_up() {
    let rt = runtime();
    let first = rt.spawn(PythonActor::new("actors", "Echo").name("echo")).expect("spawn");
    match rt.spawn(PythonActor::new("actors", "Echo").name("echo")) {
        Err(SpawnError::NameTaken(name)) => assert_eq!(name, "echo"),
        other => panic!("expected NameTaken, got {other:?}"),
    }
    let found = rt.lookup::<subactor::PyActor>("echo").expect("lookup");
    assert_eq!(found, first);
    first.stop();
    first.blocking_wait();
    assert!(rt.lookup::<subactor::PyActor>("echo").is_none());
    rt.spawn(PythonActor::new("actors", "Echo").name("echo")).expect("the name is free again");
    rt.shutdown().expect("shutdown");
}

#[test]
fn the_standard_library_works_in_actors() {
    // datetime, zoneinfo, decimal and asyncio, whose C accelerators are unsafe in own-GIL
    // interpreters here, work in several actors at once, and ending them is clean.
    let rt = runtime();
    let actors: Vec<_> = (0..3).map(|_| spawn(&rt, "Stdlib")).collect();
    for actor in &actors {
        let answer = actor.blocking_ask((), TIMEOUT).expect("ask");
        assert_eq!(answer, Value::from(("2024-03-31T12:00:00+00:00", "0.125", 5)));
    }
    rt.shutdown().expect("shutdown");
}

#[test]
fn actors_run_on_named_threads_and_can_be_pinned_to_a_core() {
    let rt = runtime();
    let pinned = rt.spawn(PythonActor::new("actors", "Placement").name("placed").pin_to_core(0)).expect("spawn");
    assert_eq!(pinned.blocking_ask((), TIMEOUT).expect("ask"), Value::List(vec![Value::Int(0)]));
    let names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    assert!(names.iter().any(|n| n == "actor:placed"), "no thread named after the actor in {names:?}");
    match rt.spawn(PythonActor::new("actors", "Placement").pin_to_core(10_000)) {
        Err(SpawnError::InvalidOptions(why)) => assert!(why.contains("10000"), "{why}"),
        other => panic!("expected InvalidOptions, got {other:?}"),
    }
    rt.shutdown().expect("shutdown");
}

/// The names of this process's threads, as the system shows them.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

fn warm_runtime(imports: subactor::WarmImports) -> subactor::Runtime {
    let rt = subactor::Runtime::builder()
        .python_path([concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python")])
        .warm_imports(imports)
        .warm_interpreters(2)
        .build()
        .expect("the runtime starts");
    crate::common::eventually("the pool fills", || rt.warm_pool().ready == 2);
    rt
}

/// `[thread name at import, imports in that interpreter, tag]` of a `warm_probe.Where`.
fn where_imported(rt: &subactor::Runtime, name: &str) -> (String, i64) {
    let probe = rt.spawn(PythonActor::new("warm_probe", "Where").name(name)).expect("spawn Where");
    let answer = probe.blocking_ask((), TIMEOUT).expect("where");
    probe.stop();
    probe.blocking_wait();
    match answer {
        Value::List(items) => match items.as_slice() {
            [Value::Str(thread), Value::Int(imports), _] => (thread.to_string(), *imports),
            other => panic!("unexpected answer {other:?}"),
        },
        other => panic!("unexpected answer {other:?}"),
    }
}

#[test]
fn a_warm_pool_imports_the_modules_of_recent_spawns_for_their_actors_only() {
    let rt = warm_runtime(subactor::WarmImports::Recent);
    // Nothing learned yet: the spawn takes a plain interpreter and imports its module.
    assert_eq!(where_imported(&rt, "w1"), ("actor:w1".to_owned(), 1));
    let stats = rt.warm_pool();
    assert_eq!((stats.hits, stats.misses, stats.imported), (1, 0, 0), "{stats:?}");
    // Its replacement imported warm_probe while it waited: the next actor of that
    // module finds it imported (once: its own import took what was there).
    crate::common::eventually("the pool refills", || rt.warm_pool().ready == 2);
    assert_eq!(where_imported(&rt, "w2"), ("subactor-warm".to_owned(), 1));
    let stats = rt.warm_pool();
    assert_eq!((stats.hits, stats.misses, stats.imported), (2, 0, 1), "{stats:?}");

    // An actor of another module never gets the interpreter that imported warm_probe:
    // it takes the plain one (or, if none is ready, creates its own).
    crate::common::eventually("the pool refills", || rt.warm_pool().ready == 2);
    let globals = rt.spawn(PythonActor::new("actors", "Globals")).expect("spawn Globals");
    assert_eq!(globals.blocking_ask((), TIMEOUT).expect("globals"), Value::from(1));
    let probe = rt.spawn(PythonActor::new("actors", "Imported")).expect("spawn Imported");
    assert_eq!(
        probe.blocking_ask("warm_probe", TIMEOUT).expect("imported"),
        Value::Bool(false),
        "an actor of another module sees nothing that warm_probe's import did"
    );
    // The slot Globals took was refilled for `actors`: Globals' next actor has its
    // module imported, and its own globals (the import ran no actor code).
    crate::common::eventually("the pool refills", || rt.warm_pool().ready == 2);
    let before = rt.warm_pool().imported;
    let again = rt.spawn(PythonActor::new("actors", "Globals")).expect("spawn Globals");
    assert_eq!(again.blocking_ask((), TIMEOUT).expect("globals"), Value::from(1));
    assert_eq!(rt.warm_pool().imported, before + 1, "{:?}", rt.warm_pool());

    // A module whose top-level code needs its actor fails to import in advance: its
    // interpreter is replaced by a plain one, and its spawns import it themselves.
    for (i, name) in ["n1", "n2", "n3"].into_iter().enumerate() {
        let named = rt.spawn(PythonActor::new("warm_needs_actor", "Named").name(name)).expect("spawn Named");
        assert_eq!(
            named.blocking_ask((), TIMEOUT).expect("named"),
            Value::List(vec![Value::from(name), Value::from(format!("actor:{name}"))]),
            "spawn {i}"
        );
        crate::common::eventually("the pool refills", || rt.warm_pool().ready == 2);
    }
    rt.shutdown().expect("shutdown");
    assert!(!thread_names().iter().any(|n| n == "subactor-warm"), "the pool's threads end at shutdown");
}

#[test]
fn a_warm_pool_keeps_named_modules_imported_and_a_failing_import_breaks_no_spawn() {
    let rt = warm_runtime(subactor::WarmImports::Modules(vec!["warm_probe".into(), "broken_import".into()]));
    // The first spawn already finds its module imported.
    assert_eq!(where_imported(&rt, "m1"), ("subactor-warm".to_owned(), 1));
    // broken_import failed in advance: its slot holds a plain interpreter, and its
    // actors' spawns fail as they would without a pool, with the module's traceback.
    match start_error(rt.spawn(PythonActor::new("broken_import", "Anything"))) {
        StartError::Import { module, exception } => {
            assert_eq!(module, "broken_import");
            assert_eq!(exception.message, "this module is broken on purpose");
            assert!(exception.traceback.contains("in _fail"), "{}", exception.traceback);
        }
        other => panic!("expected Import, got {other:?}"),
    }
    let stats = rt.warm_pool();
    assert_eq!((stats.hits, stats.misses, stats.imported), (2, 0, 1), "{stats:?}");
    // A class of a module not named spawns too (a plain interpreter, or its own).
    crate::common::eventually("the pool refills", || rt.warm_pool().ready == 2);
    assert_eq!(spawn(&rt, "Echo").blocking_ask(7, TIMEOUT).expect("echo"), Value::from(7));
    crate::common::eventually("the pool refills", || rt.warm_pool().ready == 2);
    assert_eq!(where_imported(&rt, "m2"), ("subactor-warm".to_owned(), 1));
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_warm_pool_without_imports_hands_plain_interpreters() {
    let rt = warm_runtime(subactor::WarmImports::None);
    for name in ["p1", "p2", "p3"] {
        assert_eq!(where_imported(&rt, name), (format!("actor:{name}"), 1));
        crate::common::eventually("the pool refills", || rt.warm_pool().ready == 2);
    }
    let stats = rt.warm_pool();
    assert_eq!((stats.hits, stats.misses, stats.imported), (3, 0, 0), "{stats:?}");
    rt.shutdown().expect("shutdown");
}

#[test]
fn a_warm_pool_hands_ready_interpreters_to_spawns_and_refills() {
    let plain = runtime();
    assert_eq!(plain.warm_pool(), subactor::WarmPoolStats::default(), "no pool unless asked for");
    plain.shutdown().expect("shutdown");
    let rt = subactor::Runtime::builder()
        .python_path([concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python")])
        .warm_interpreters(2)
        .build()
        .expect("the runtime starts");
    crate::common::eventually("the pool fills", || rt.warm_pool().ready == 2);
    assert_eq!(thread_names().iter().filter(|n| *n == "subactor-warm").count(), 2);

    let a = rt.spawn(PythonActor::new("actors", "Globals").name("warm-a")).expect("spawn a");
    let b = rt.spawn(PythonActor::new("actors", "Globals")).expect("spawn b");
    let stats = rt.warm_pool();
    assert_eq!((stats.hits, stats.misses), (2, 0), "both spawns found a ready interpreter: {stats:?}");
    assert_eq!(a.blocking_ask((), TIMEOUT).expect("a"), Value::from(1));
    assert_eq!(a.blocking_ask((), TIMEOUT).expect("a"), Value::from(2));
    assert_eq!(b.blocking_ask((), TIMEOUT).expect("b"), Value::from(1), "warm interpreters share no globals");
    assert!(thread_names().iter().any(|n| n == "actor:warm-a"), "the warm thread takes the actor's name");
    let who = [spawn(&rt, "Whoami"), spawn(&rt, "Whoami")].map(|w| w.blocking_ask((), TIMEOUT).expect("whoami"));
    assert_ne!(who[0], who[1], "each actor has its own interpreter");
    assert_ne!(who[0], Value::Int(0));

    // A spawn that fails takes an interpreter too; the next one works.
    let missing = start_error(rt.spawn(PythonActor::new("actors", "NoSuchClass")));
    assert!(matches!(missing, StartError::MissingClass { .. }), "{missing:?}");
    assert_eq!(spawn(&rt, "Echo").blocking_ask(7, TIMEOUT).expect("echo"), Value::from(7));
    crate::common::eventually("the pool refills", || rt.warm_pool().ready == 2);
    let stats = rt.warm_pool();
    assert_eq!(stats.hits + stats.misses, 6, "{stats:?}");

    rt.shutdown().expect("shutdown");
    assert!(!thread_names().iter().any(|n| n == "subactor-warm"), "the pool's threads end at shutdown");
    assert_eq!(rt.warm_pool(), subactor::WarmPoolStats::default());
}
