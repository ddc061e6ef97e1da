//! The host's helper functions inside one interpreter: the bootstrap module
//! (`bootstrap.py`), pickle, and turning exceptions into [`PythonException`]s.

use std::cell::OnceCell;
use std::ffi::{CStr, c_long};
use std::ptr;
use std::sync::OnceLock;

use pyo3_ffi as ffi;

use super::object::{Obj, take_exception, to_rust_string};
use crate::PythonException;

/// The bootstrap module's source, NUL-terminated for `Py_CompileString`.
const BOOTSTRAP: &str = concat!(include_str!("../bootstrap.py"), "\0");

/// The parts of the bootstrap an actor may never need (`bootstrap_late.py`), run in the
/// bootstrap module on first use (its `_late()`).
const BOOTSTRAP_LATE: &str = concat!(include_str!("../bootstrap_late.py"), "\0");

/// The bootstrap compiled once per process and marshalled: loading it in each new
/// interpreter is cheaper than compiling it (~1 ms). Code objects cannot cross
/// interpreters; their marshalled bytes can.
static BOOTSTRAP_CODE: OnceLock<Vec<u8>> = OnceLock::new();

/// The same, for `bootstrap_late.py`.
static BOOTSTRAP_LATE_CODE: OnceLock<Vec<u8>> = OnceLock::new();

/// The code object of `source` (NUL-terminated, compiled as `filename`) in the attached
/// interpreter: loaded from `marshalled`, or compiled and marshalled there for the
/// next interpreters.
///
/// # Safety
///
/// An interpreter is attached on this thread.
unsafe fn code_of(source: &str, filename: &CStr, marshalled: &OnceLock<Vec<u8>>) -> Result<Obj, PythonException> {
    if let Some(bytes) = marshalled.get() {
        let len = ffi::Py_ssize_t::try_from(bytes.len()).unwrap_or(ffi::Py_ssize_t::MAX);
        // SAFETY: attached (contract); the bytes are a marshalled code object made by
        // this same libpython, alive for the call.
        if let Some(code) = unsafe { Obj::from_owned(ffi::PyMarshal_ReadObjectFromString(bytes.as_ptr().cast(), len)) }
        {
            return Ok(code);
        }
        // SAFETY: attached; fall back to compiling, dropping the marshal error.
        unsafe { ffi::PyErr_Clear() };
    }
    let source = CStr::from_bytes_with_nul(source.as_bytes()).unwrap_or(c"");
    // SAFETY: attached (contract); `source` and `filename` are NUL-terminated.
    let code =
        unsafe { Obj::from_owned(ffi::Py_CompileString(source.as_ptr(), filename.as_ptr(), ffi::Py_file_input)) }
            // SAFETY: attached; a null result means an exception is set.
            .ok_or_else(|| describe_fallback(unsafe { take_exception() }))?;
    // SAFETY: attached; `code` is a code object; the result is a new bytes object or null.
    let data = unsafe { Obj::from_owned(ffi::PyMarshal_WriteObjectToString(code.as_ptr(), MARSHAL_VERSION)) };
    match data {
        Some(data) => {
            // SAFETY: `data` is a bytes object of the attached interpreter.
            let bytes = unsafe {
                let len = usize::try_from(ffi::PyBytes_Size(data.as_ptr())).unwrap_or(0);
                std::slice::from_raw_parts(ffi::PyBytes_AsString(data.as_ptr()).cast::<u8>(), len).to_vec()
            };
            let _ = marshalled.set(bytes);
        }
        // SAFETY: attached; caching is optional, drop the error.
        None => unsafe { ffi::PyErr_Clear() },
    }
    Ok(code)
}

/// `_bootstrap_late()`, a function of the bootstrap module: the code of
/// `bootstrap_late.py`, for its `_late()` to run.
static LATE_METHOD: super::module::CStatic<ffi::PyMethodDef> = super::module::CStatic::new(super::module::method(
    c"_bootstrap_late",
    ffi::PyMethodDefPointer { PyCFunction: bootstrap_late },
    ffi::METH_NOARGS,
    c"_bootstrap_late(): the code of the bootstrap's late parts (bootstrap_late.py).",
));

unsafe extern "C" fn bootstrap_late(_module: *mut ffi::PyObject, _unused: *mut ffi::PyObject) -> *mut ffi::PyObject {
    super::module::guard(|| {
        // SAFETY: CPython calls this attached.
        match unsafe { code_of(BOOTSTRAP_LATE, c"<subactor-host bootstrap_late>", &BOOTSTRAP_LATE_CODE) } {
            Ok(code) => Ok(code.into_ptr()),
            Err(exception) => {
                let message = std::ffi::CString::new(exception.to_string().replace('\0', " ")).unwrap_or_default();
                // SAFETY: attached; the message is NUL-terminated.
                unsafe { ffi::PyErr_SetString(ffi::PyExc_ImportError, message.as_ptr()) };
                Err(super::module::Raised)
            }
        }
    })
}

/// `marshal.version` of CPython 3.12 and 3.13.
pub(super) const MARSHAL_VERSION: std::ffi::c_int = 4;

/// The pickle protocol used for objects that are not plain values (5: out-of-band
/// buffers, Python 3.8+).
const PICKLE_PROTOCOL: c_long = 5;

/// Functions of the bootstrap module and of pickle, held for one interpreter.
pub(crate) struct Helpers {
    /// The bootstrap module itself, for its other attributes.
    module: Obj,
    /// The in-actor module's types, once it exists in this interpreter.
    types: std::cell::RefCell<Option<ModuleTypes>>,
    load_module: Obj,
    get_class: Obj,
    type_name: Obj,
    describe: Obj,
    teardown: Obj,
    /// `subactor.Down` once this interpreter has made it (on first use: see
    /// `_errors` in `bootstrap.py`), and the function that reads one.
    down: OnceCell<Obj>,
    down_parts: Obj,
    /// `subactor.Killed` and `subactor.TimeLimitExceeded`, raised by interrupts.
    pub(crate) killed: Obj,
    pub(crate) time_limit_exceeded: Obj,
    pickle: OnceCell<Pickle>,
}

/// The types of the in-actor module, owned.
pub(crate) struct ModuleTypes {
    pub(crate) actor_ref: Obj,
    pub(crate) buffer: Obj,
    pub(crate) buffer_mut: Obj,
}

/// The same types, borrowed as pointers for type checks.
#[derive(Clone, Copy)]
pub(crate) struct TypePtrs {
    pub(crate) actor_ref: *mut ffi::PyObject,
    pub(crate) buffer: *mut ffi::PyObject,
    pub(crate) buffer_mut: *mut ffi::PyObject,
}

/// The bootstrap's `dumps` (see `bootstrap.py`) and `pickle.loads`, looked up on first use.
pub(crate) struct Pickle {
    dumps: Obj,
    loads: Obj,
    protocol: Obj,
}

impl Pickle {
    /// The bootstrap's `dumps(obj, 5)` (`pickle.dumps`, with interactive definitions by
    /// value); on failure, the exception.
    ///
    /// # Safety
    ///
    /// `obj` is valid and the owning interpreter is attached.
    pub(crate) unsafe fn dumps(&self, obj: *mut ffi::PyObject) -> Result<Obj, Obj> {
        // SAFETY: forwarded contract.
        unsafe { call(&self.dumps, &[obj, self.protocol.as_ptr()]) }
    }

    /// `pickle.loads(data)`; on failure, the exception.
    ///
    /// # Safety
    ///
    /// `data` is valid and the owning interpreter is attached.
    pub(crate) unsafe fn loads(&self, data: *mut ffi::PyObject) -> Result<Obj, Obj> {
        // SAFETY: forwarded contract.
        unsafe { call(&self.loads, &[data]) }
    }
}

/// Calls `func(*args)` with vectorcall; on failure, the raised exception.
///
/// # Safety
///
/// `func` and every arg are valid objects of the attached interpreter.
pub(crate) unsafe fn call(func: &Obj, args: &[*mut ffi::PyObject]) -> Result<Obj, Obj> {
    // One spare slot in front lets a bound method prepend `self` without copying
    // (PY_VECTORCALL_ARGUMENTS_OFFSET).
    let mut slots = [ptr::null_mut::<ffi::PyObject>(); 4];
    let mut heap;
    let buffer: &mut [*mut ffi::PyObject] = if args.len() < slots.len() {
        &mut slots[..=args.len()]
    } else {
        heap = vec![ptr::null_mut(); args.len() + 1];
        &mut heap
    };
    buffer[1..].copy_from_slice(args);
    let nargs = args.len() | ffi::PY_VECTORCALL_ARGUMENTS_OFFSET;
    // SAFETY: the objects are valid and attached (contract); the argument array has
    // args.len() entries after the writable spare slot, as the flag promises.
    let result = unsafe { ffi::PyObject_Vectorcall(func.as_ptr(), buffer.as_mut_ptr().add(1), nargs, ptr::null_mut()) };
    // SAFETY: a new reference or null; attached.
    match unsafe { Obj::from_owned(result) } {
        Some(obj) => Ok(obj),
        // SAFETY: attached; a null result means an exception is set.
        None => Err(unsafe { take_exception() }.unwrap_or_else(missing_exception)),
    }
}

/// An exception to report when the C API failed without raising one (it should not).
fn missing_exception() -> Obj {
    // SAFETY: only called with an interpreter attached (by `call`'s callers); builds a
    // SystemError instance.
    unsafe {
        let args = ffi::PyTuple_New(0);
        let exc = ffi::PyObject_Call(ffi::PyExc_SystemError, args, ptr::null_mut());
        ffi::Py_XDECREF(args);
        Obj::from_owned(exc)
            .unwrap_or_else(|| Obj::from_borrowed(ffi::Py_None()).unwrap_or_else(|| unreachable!("None always exists")))
    }
}

/// A new `str` object.
///
/// # Safety
///
/// An interpreter is attached.
pub(crate) unsafe fn new_str(s: &str) -> Result<Obj, Obj> {
    let len = ffi::Py_ssize_t::try_from(s.len()).unwrap_or(ffi::Py_ssize_t::MAX);
    // SAFETY: attached (contract); `s` is valid UTF-8 of that length.
    unsafe { Obj::from_owned(ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast(), len)) }
        // SAFETY: attached; null means an exception is set.
        .ok_or_else(|| unsafe { take_exception() }.unwrap_or_else(missing_exception))
}

impl Helpers {
    /// Runs the bootstrap module in the attached interpreter, puts `paths` first on its
    /// `sys.path`, guards against the accelerators that are unsafe in subinterpreters,
    /// stands the driving program's `main` module in for `__main__`, and keeps the
    /// module's functions.
    ///
    /// `guard`: install the import guard (in a subinterpreter; a process actor's main
    /// interpreter loads everything).
    ///
    /// # Safety
    ///
    /// A fresh interpreter is attached on this thread.
    pub(crate) unsafe fn load(
        paths: &[String],
        main: Option<&crate::MainModule>,
        guard: bool,
    ) -> Result<Helpers, PythonException> {
        // SAFETY: attached (contract).
        let helpers = unsafe { Helpers::load_bare() }?;
        // SAFETY: attached (contract); every object is owned by an `Obj`.
        unsafe {
            let failed = || describe_fallback(take_exception());
            let list = Obj::from_owned(ffi::PyList_New(0)).ok_or_else(failed)?;
            for path in paths {
                let path = new_str(path).map_err(|exc| helpers.describe(exc).0)?;
                if ffi::PyList_Append(list.as_ptr(), path.as_ptr()) < 0 {
                    return Err(helpers.current_exception());
                }
            }
            let none = || Obj::from_borrowed(ffi::Py_None()).ok_or_else(failed);
            let text = |s: &str| new_str(s).map_err(|exc| helpers.describe(exc).0);
            let (main_path, main_name) = match main {
                Some(crate::MainModule::Script(path)) => (text(&path.to_string_lossy())?, none()?),
                Some(crate::MainModule::Module(name)) => (none()?, text(name)?),
                None => (none()?, none()?),
            };
            let guard = Obj::from_borrowed(if guard { ffi::Py_True() } else { ffi::Py_False() }).ok_or_else(failed)?;
            helpers.call_attr(c"setup", &[list.as_ptr(), main_path.as_ptr(), main_name.as_ptr(), guard.as_ptr()])?;
        }
        Ok(helpers)
    }

    /// Runs the bootstrap module in the attached interpreter and keeps its functions,
    /// without setting anything up: what the main interpreter uses.
    ///
    /// # Safety
    ///
    /// An interpreter is attached on this thread.
    pub(crate) unsafe fn load_bare() -> Result<Helpers, PythonException> {
        // SAFETY: attached (contract); every pointer is checked before use and owned by
        // an `Obj`, except borrowed dict entries, which are INCREF'd at once.
        unsafe {
            let failed = || describe_fallback(take_exception());
            let code = code_of(BOOTSTRAP, c"<subactor-host bootstrap>", &BOOTSTRAP_CODE)?;
            let module = Obj::from_owned(ffi::PyModule_New(c"_subactor_host".as_ptr())).ok_or_else(failed)?;
            let dict = ffi::PyModule_GetDict(module.as_ptr());
            if ffi::PyDict_SetItemString(dict, c"__builtins__".as_ptr(), ffi::PyEval_GetBuiltins()) < 0 {
                return Err(failed());
            }
            super::codecache::add_functions(dict).map_err(|()| failed())?;
            let late = Obj::from_owned(ffi::PyCFunction_NewEx(LATE_METHOD.as_ptr(), ptr::null_mut(), ptr::null_mut()))
                .ok_or_else(failed)?;
            if ffi::PyDict_SetItemString(dict, c"_bootstrap_late".as_ptr(), late.as_ptr()) < 0 {
                return Err(failed());
            }
            Obj::from_owned(ffi::PyEval_EvalCode(code.as_ptr(), dict, dict)).ok_or_else(failed)?;
            let get = |name: &CStr| {
                Obj::from_borrowed(ffi::PyDict_GetItemString(dict, name.as_ptr())).ok_or_else(|| PythonException {
                    type_name: "SystemError".into(),
                    message: format!("the bootstrap module has no {name:?}"),
                    traceback: String::new(),
                })
            };
            let helpers = Helpers {
                types: std::cell::RefCell::new(None),
                load_module: get(c"load_module")?,
                get_class: get(c"get_class")?,
                type_name: get(c"type_name")?,
                describe: get(c"describe")?,
                teardown: get(c"teardown")?,
                down: OnceCell::new(),
                down_parts: get(c"down_parts")?,
                killed: get(c"Killed")?,
                time_limit_exceeded: get(c"TimeLimitExceeded")?,
                pickle: OnceCell::new(),
                module,
            };
            Ok(helpers)
        }
    }

    /// Flushes `sys.stdout` and `sys.stderr` (before a fork).
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached.
    pub(crate) unsafe fn flush_std(&self) {
        // SAFETY: attached (contract).
        if let Err(exception) = unsafe { self.call_attr(c"flush_std", &[]) } {
            tracing::debug!(%exception, "flushing the standard streams failed");
        }
    }

    /// Runs the bootstrap's clean-up before the interpreter ends; failures are logged.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached.
    pub(crate) unsafe fn teardown(&self) {
        // SAFETY: attached (contract).
        if let Err(exc) = unsafe { call(&self.teardown, &[]) } {
            // SAFETY: attached (contract).
            let (exception, _) = unsafe { self.describe(exc) };
            tracing::debug!(%exception, "interpreter teardown helper failed");
        }
    }

    /// An attribute of the bootstrap module.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached.
    pub(crate) unsafe fn attr(&self, name: &CStr) -> Result<Obj, PythonException> {
        // SAFETY: attached (contract); a new reference or null.
        unsafe { Obj::from_owned(ffi::PyObject_GetAttrString(self.module.as_ptr(), name.as_ptr())) }
            // SAFETY: attached; null means an exception is set.
            .ok_or_else(|| unsafe { self.current_exception() })
    }

    /// Calls a function of the bootstrap module.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached; the args are its objects.
    pub(crate) unsafe fn call_attr(&self, name: &CStr, args: &[*mut ffi::PyObject]) -> Result<Obj, PythonException> {
        // SAFETY: attached (contract).
        unsafe {
            let func = self.attr(name)?;
            call(&func, args).map_err(|exc| self.describe(exc).0)
        }
    }

    /// The in-actor module's types, if it is installed in this interpreter.
    pub(crate) fn types(&self) -> Option<TypePtrs> {
        self.types.borrow().as_ref().map(|t| TypePtrs {
            actor_ref: t.actor_ref.as_ptr(),
            buffer: t.buffer.as_ptr(),
            buffer_mut: t.buffer_mut.as_ptr(),
        })
    }

    /// Sets or clears the in-actor module's types.
    pub(crate) fn set_types(&self, types: Option<ModuleTypes>) {
        // The old value is dropped here, with the interpreter attached (callers' state).
        let _old = self.types.replace(types);
    }

    /// Imports a module by dotted name or file path.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached.
    pub(crate) unsafe fn load_module(&self, target: &str) -> Result<Obj, Obj> {
        // SAFETY: attached (contract).
        unsafe { call(&self.load_module, &[new_str(target)?.as_ptr()]) }
    }

    /// `getattr(module, name)`, checked to be callable.
    ///
    /// # Safety
    ///
    /// `module` belongs to the owning interpreter, which is attached.
    pub(crate) unsafe fn get_class(&self, module: &Obj, name: &str) -> Result<Obj, Obj> {
        // SAFETY: attached (contract).
        unsafe { call(&self.get_class, &[module.as_ptr(), new_str(name)?.as_ptr()]) }
    }

    /// Makes a new instance ready (bootstrap's `prepare`): the callable that handles
    /// one message, or `None` when the class has no `receive`.
    ///
    /// # Safety
    ///
    /// `instance` belongs to the owning interpreter, which is attached.
    pub(crate) unsafe fn prepare(
        &self,
        instance: &Obj,
        incarnation: &super::interp::Incarnation,
    ) -> Result<Option<Obj>, Obj> {
        // SAFETY: attached (contract); every object made here is owned by an `Obj`.
        unsafe {
            let func = self.attr(c"prepare").map_err(|_| take_exception().unwrap_or_else(missing_exception))?;
            let none = || Obj::from_borrowed(ffi::Py_None()).unwrap_or_else(|| unreachable!("None always exists"));
            let every = match incarnation.snapshot_every {
                Some(n) => Obj::from_owned(ffi::PyLong_FromUnsignedLong(n.into()))
                    .ok_or_else(|| take_exception().unwrap_or_else(missing_exception))?,
                None => none(),
            };
            let state = match &incarnation.state {
                Some(state) => super::convert::to_python(state, self).map_err(|error| {
                    let message = format!("the kept state cannot be rebuilt: {error}");
                    if let Ok(text) = std::ffi::CString::new(message) {
                        ffi::PyErr_SetString(ffi::PyExc_TypeError, text.as_ptr());
                    }
                    take_exception().unwrap_or_else(missing_exception)
                })?,
                None => none(),
            };
            let flag = |b: bool| {
                Obj::from_borrowed(if b { ffi::Py_True() } else { ffi::Py_False() })
                    .unwrap_or_else(|| unreachable!("booleans always exist"))
            };
            let concurrency = Obj::from_owned(ffi::PyLong_FromSize_t(incarnation.max_concurrency))
                .ok_or_else(|| take_exception().unwrap_or_else(missing_exception))?;
            let limit = match incarnation.time_limit {
                Some(limit) => Obj::from_owned(ffi::PyFloat_FromDouble(limit.as_secs_f64()))
                    .ok_or_else(|| take_exception().unwrap_or_else(missing_exception))?,
                None => none(),
            };
            let prepared = call(
                &func,
                &[
                    instance.as_ptr(),
                    every.as_ptr(),
                    state.as_ptr(),
                    flag(incarnation.state.is_some()).as_ptr(),
                    flag(incarnation.upgrading).as_ptr(),
                    concurrency.as_ptr(),
                    limit.as_ptr(),
                ],
            )?;
            Ok((prepared.as_ptr() != ffi::Py_None()).then_some(prepared))
        }
    }

    /// Imports a module anew from its source (an upgrade): see bootstrap's
    /// `load_module_fresh`.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached.
    pub(crate) unsafe fn load_module_fresh(&self, target: &str) -> Result<Obj, Obj> {
        // SAFETY: attached (contract).
        unsafe {
            let func =
                self.attr(c"load_module_fresh").map_err(|_| take_exception().unwrap_or_else(missing_exception))?;
            call(&func, &[new_str(target)?.as_ptr()])
        }
    }

    /// The `subactor.Down` class, or null while this interpreter has not made it (then
    /// no object is a `Down`).
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached.
    pub(crate) unsafe fn down_type(&self) -> *mut ffi::PyObject {
        if let Some(down) = self.down.get() {
            return down.as_ptr();
        }
        // SAFETY: attached (contract); the dict lookup gives a borrowed reference or null
        // without raising; an `Obj` takes a strong one.
        unsafe {
            let dict = ffi::PyModule_GetDict(self.module.as_ptr());
            match Obj::from_borrowed(ffi::PyDict_GetItemString(dict, c"Down".as_ptr())) {
                Some(down) => self.down.get_or_init(|| down).as_ptr(),
                None => ptr::null_mut(),
            }
        }
    }

    /// A new `subactor.Down(id, name, kind, detail)`.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached; the args are its objects.
    pub(crate) unsafe fn new_down(&self, args: &[*mut ffi::PyObject]) -> Result<Obj, Obj> {
        let down = match self.down.get() {
            Some(down) => down,
            None => {
                // SAFETY: attached (contract); the class is made on first use by the
                // module's __getattr__; a new reference or null.
                match unsafe { Obj::from_owned(ffi::PyObject_GetAttrString(self.module.as_ptr(), c"Down".as_ptr())) } {
                    Some(down) => self.down.get_or_init(|| down),
                    // SAFETY: attached; null means an exception is set.
                    None => return Err(unsafe { take_exception() }.unwrap_or_else(missing_exception)),
                }
            }
        };
        // SAFETY: forwarded contract.
        unsafe { call(down, args) }
    }

    /// `(id, name, kind, detail)` of a `subactor.Down`.
    ///
    /// # Safety
    ///
    /// `down` is a `Down` of the owning interpreter, which is attached.
    pub(crate) unsafe fn down_parts(&self, down: *mut ffi::PyObject) -> Result<Obj, Obj> {
        // SAFETY: forwarded contract.
        unsafe { call(&self.down_parts, &[down]) }
    }

    /// `pickle`, imported on first use.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached.
    pub(crate) unsafe fn pickle(&self) -> Result<&Pickle, PythonException> {
        if let Some(pickle) = self.pickle.get() {
            return Ok(pickle);
        }
        // SAFETY: attached (contract); results are checked and owned.
        let pickle = unsafe {
            let module = Obj::from_owned(ffi::PyImport_ImportModule(c"pickle".as_ptr()))
                .ok_or_else(|| self.current_exception())?;
            let attr = |name: &CStr| {
                Obj::from_owned(ffi::PyObject_GetAttrString(module.as_ptr(), name.as_ptr()))
                    .ok_or_else(|| self.current_exception())
            };
            Pickle {
                // The bootstrap's: pickle.dumps, except that what the receiver could not
                // import by reference (interactive definitions) travels by value.
                dumps: self.attr(c"dumps")?,
                loads: attr(c"loads")?,
                protocol: Obj::from_owned(ffi::PyLong_FromLong(PICKLE_PROTOCOL))
                    .ok_or_else(|| self.current_exception())?,
            }
        };
        Ok(self.pickle.get_or_init(|| pickle))
    }

    /// The qualified name of an object's type (`"collections.OrderedDict"`).
    ///
    /// # Safety
    ///
    /// `obj` belongs to the owning interpreter, which is attached.
    pub(crate) unsafe fn type_name(&self, obj: *mut ffi::PyObject) -> String {
        // SAFETY: attached (contract).
        match unsafe { call(&self.type_name, &[obj]) } {
            // SAFETY: attached; the helper returns a str.
            Ok(name) => unsafe { to_rust_string(name.as_ptr()) }.unwrap_or_else(|| "?".into()),
            Err(_) => "?".into(),
        }
    }

    /// Describes an exception: the [`PythonException`], and the extension module that
    /// refused this subinterpreter if that is what it says.
    ///
    /// # Safety
    ///
    /// `exc` belongs to the owning interpreter, which is attached.
    pub(crate) unsafe fn describe(&self, exc: Obj) -> (PythonException, Option<String>) {
        // SAFETY: attached (contract). The helper returns a 4-tuple of (str, str, str,
        // str | None); each item is checked by `to_rust_string`.
        unsafe {
            let Ok(parts) = call(&self.describe, &[exc.as_ptr()]) else {
                return (describe_fallback(Some(exc)), None);
            };
            if ffi::Py_TYPE(parts.as_ptr()) != &raw mut ffi::PyTuple_Type || ffi::PyTuple_GET_SIZE(parts.as_ptr()) != 4
            {
                return (describe_fallback(Some(exc)), None);
            }
            let item = |i| to_rust_string(ffi::PyTuple_GET_ITEM(parts.as_ptr(), i));
            let exception = PythonException {
                type_name: item(0).unwrap_or_else(|| "?".into()),
                message: item(1).unwrap_or_default(),
                traceback: item(2).unwrap_or_default(),
            };
            (exception, item(3))
        }
    }

    /// Takes and describes the exception currently raised.
    ///
    /// # Safety
    ///
    /// The owning interpreter is attached.
    pub(crate) unsafe fn current_exception(&self) -> PythonException {
        // SAFETY: attached (contract).
        match unsafe { take_exception() } {
            // SAFETY: attached (contract).
            Some(exc) => unsafe { self.describe(exc) }.0,
            None => describe_fallback(None),
        }
    }
}

/// A [`PythonException`] built without calling back into Python (for failures of the
/// bootstrap itself).
fn describe_fallback(exc: Option<Obj>) -> PythonException {
    let Some(exc) = exc else {
        return PythonException {
            type_name: "SystemError".into(),
            message: "unknown error".into(),
            traceback: String::new(),
        };
    };
    // SAFETY: `exc` is valid and attached (Obj invariant); tp_name is a C string.
    let type_name = unsafe { CStr::from_ptr((*ffi::Py_TYPE(exc.as_ptr())).tp_name) }.to_string_lossy().into_owned();
    // SAFETY: as above; PyObject_Str returns a new reference or null.
    let message = unsafe { Obj::from_owned(ffi::PyObject_Str(exc.as_ptr())) }
        // SAFETY: as above.
        .and_then(|s| unsafe { to_rust_string(s.as_ptr()) })
        .unwrap_or_default();
    // SAFETY: attached; drop any error raised by PyObject_Str.
    unsafe { ffi::PyErr_Clear() };
    PythonException { type_name, message, traceback: String::new() }
}
