//! Crossing from tokio to asyncio: each native call becomes one tokio task and one asyncio
//! future, and the tokio side never takes the GIL.
//!
//! A finished task drops its result into the client's `Mailbox` and, if the box was empty,
//! writes one byte to a socket pair whose read end the event loop watches (`loop.add_reader`).
//! The loop's thread, already holding the GIL, then converts every waiting result to Python and
//! settles the futures. Against `call_soon_threadsafe` from a tokio thread (which must take the
//! GIL while the loop thread wakes up and wants it too) this saves a GIL hand-off per call, and
//! under concurrency one wake-up settles many calls. A call from another event loop than the one
//! the mailbox is bound to takes the plain route (GIL + `call_soon_threadsafe`).
//!
//! Panics inside the work are caught and become `NativePanicError`; a Python-side cancel of the
//! future leaves the Rust work running to its end, so a mutation is never cut in half. A traced
//! call (`trace` given) records its exchanges (`orders::trace`); they are appended to the
//! caller's list just before its future settles, whether the call succeeded or not.

use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyList;

use super::error::OrderError;
use super::py::convert::{append_exchanges, order_error, ToPy};
use super::runtime::{runtime, this_process};
use super::trace::{self, Recorder};
use crate::errors::{panic_text, panic_text_error};

/// The outcome of a native call, before it becomes a Python value or exception.
enum Outcome<T> {
    Done(T),
    Failed(OrderError),
    Panicked(String),
}

impl<T: ToPy> Outcome<T> {
    /// The Python value and whether it is an exception to raise.
    fn into_py(self, py: Python<'_>) -> (Bound<'_, PyAny>, bool) {
        let converted = match self {
            Outcome::Done(value) => value.to_py(py),
            Outcome::Failed(err) => Err(order_error(py, err)),
            Outcome::Panicked(text) => Err(panic_text_error(py, &text)),
        };
        match converted {
            Ok(value) => (value, false),
            Err(err) => (err.into_value(py).into_bound(py).into_any(), true),
        }
    }
}

/// Where a traced call's exchanges go: the caller's list, and what the call recorded.
type TraceTarget = Option<(Py<PyList>, Arc<Recorder>)>;

/// A finished call: its outcome, and its trace when asked for one.
struct Finished<T> {
    outcome: Outcome<T>,
    trace: TraceTarget,
}

/// A finished call waiting in a mailbox.
trait Completion: Send {
    fn settle(self: Box<Self>, py: Python<'_>, future: &Bound<'_, PyAny>);
}

impl<T: ToPy> Completion for Finished<T> {
    fn settle(self: Box<Self>, py: Python<'_>, future: &Bound<'_, PyAny>) {
        if let Some((list, recorder)) = self.trace {
            // A trace that cannot be handed over must not change the call's own outcome.
            let _ = append_exchanges(list.bind(py), recorder.take());
        }
        let (value, failed) = self.outcome.into_py(py);
        // A future cancelled meanwhile refuses the result: nothing awaits it any more.
        let _ = settle_future(future, value, failed);
    }
}

/// Polls a future and turns a panic inside it into a value instead of unwinding into tokio.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(panic_text(payload.as_ref()))),
        }
    }
}

async fn run<T, F>(work: F, recorder: Option<Arc<Recorder>>) -> Outcome<T>
where
    F: Future<Output = Result<T, OrderError>>,
{
    let caught = match recorder {
        Some(recorder) => CatchPanic(Box::pin(trace::traced(recorder, work))).await,
        None => CatchPanic(Box::pin(work)).await,
    };
    match caught {
        Ok(Ok(value)) => Outcome::Done(value),
        Ok(Err(err)) => Outcome::Failed(err),
        Err(text) => Outcome::Panicked(text),
    }
}

/// Plain route, on the loop's thread: convert a handed-over completion and settle `future`.
#[pyfunction]
fn complete_future(future: &Bound<'_, PyAny>, settle: &Bound<'_, Settle>) {
    let taken = match settle.get().completion.lock() {
        Ok(mut guard) => guard.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    if let Some(completion) = taken {
        completion.settle(future.py(), future);
    }
}

/// Settle `future` unless it is already done (cancelled); runs on the loop's thread.
fn settle_future(future: &Bound<'_, PyAny>, value: Bound<'_, PyAny>, failed: bool) -> PyResult<()> {
    let py = future.py();
    if future.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    let method = if failed {
        intern!(py, "set_exception")
    } else {
        intern!(py, "set_result")
    };
    future.call_method1(method, (value,))?;
    Ok(())
}

type Entry = (Py<PyAny>, Box<dyn Completion>);

/// Finished calls waiting for the event loop, and the socket pair that wakes it.
struct Mailbox {
    /// `None` once unbound (`aclose`): late calls then take the plain route.
    waiting: Mutex<Option<Vec<Entry>>>,
    event_loop: Py<PyAny>,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

impl Mailbox {
    fn new(event_loop: Py<PyAny>) -> std::io::Result<Mailbox> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(Mailbox {
            waiting: Mutex::new(Some(Vec::new())),
            event_loop,
            wake_tx,
            wake_rx,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Entry>>> {
        match self.waiting.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// From a tokio thread: leave a finished call; wake the loop if the box was empty.
    fn post(&self, entry: Entry) {
        let was_empty = {
            let mut waiting = self.lock();
            match waiting.as_mut() {
                Some(list) => {
                    list.push(entry);
                    list.len() == 1
                }
                None => {
                    drop(waiting);
                    let (future, completion) = entry;
                    hand_over(&self.event_loop, future, completion);
                    return;
                }
            }
        };
        if was_empty {
            // WouldBlock means a wake-up byte is already pending: enough.
            let _ = (&self.wake_tx).write(&[1]);
        }
    }

    /// On the loop's thread: drain the wake-up bytes first, then take every waiting call (in
    /// this order, so a call posted after the take always writes a fresh byte).
    fn take(&self) -> Vec<Entry> {
        let mut sink = [0u8; 64];
        loop {
            match (&self.wake_rx).read(&mut sink) {
                Ok(n) if n > 0 => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                _ => break,
            }
        }
        self.lock().as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Stop collecting: what waits is returned, later calls take the plain route.
    fn close(&self) -> Vec<Entry> {
        self.lock().take().unwrap_or_default()
    }
}

/// The plain route: take the GIL here and let the loop settle the future.
fn hand_over(event_loop: &Py<PyAny>, future: Py<PyAny>, completion: Box<dyn Completion>) {
    Python::attach(move |py| {
        let complete = match COMPLETE.get_or_try_init(py, || {
            wrap_pyfunction!(complete_future, py).map(|f| f.into_any().unbind())
        }) {
            Ok(f) => f,
            Err(_) => return,
        };
        let settle = Settle {
            completion: Mutex::new(Some(completion)),
        };
        // Fails only when the loop is closed: then nobody awaits the result any more.
        let _ = event_loop.bind(py).call_method1(
            intern!(py, "call_soon_threadsafe"),
            (complete, future, settle),
        );
    });
}

/// A completion wrapped for `call_soon_threadsafe` (converted on the loop's thread).
#[pyclass(frozen, module = "harness._native")]
struct Settle {
    completion: Mutex<Option<Box<dyn Completion>>>,
}

/// The reader callback registered with `loop.add_reader`: settles every waiting call.
#[pyclass(frozen, module = "harness._native")]
struct MailboxReader {
    mailbox: Arc<Mailbox>,
}

#[pymethods]
impl MailboxReader {
    fn __call__(&self, py: Python<'_>) {
        for (future, completion) in self.mailbox.take() {
            completion.settle(py, future.bind(py));
        }
    }
}

/// A mailbox bound to one event loop, in the process that bound it.
struct Binding {
    pid: u32,
    event_loop: Py<PyAny>,
    mailbox: Arc<Mailbox>,
}

/// Where a client's calls come back to asyncio: the mailbox of the loop it is used from.
#[derive(Default)]
pub struct Bridge {
    binding: Mutex<Option<Binding>>,
}

static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static COMPLETE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// An asyncio future of the running loop, already resolved to None.
pub fn ready_none(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let future = running_loop(py)?.call_method0(intern!(py, "create_future"))?;
    future.call_method1(intern!(py, "set_result"), (py.None(),))?;
    Ok(future)
}

fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let get_loop = GET_RUNNING_LOOP.get_or_try_init(py, || {
        py.import("asyncio")?
            .getattr("get_running_loop")
            .map(Bound::unbind)
    })?;
    get_loop.bind(py).call0()
}

impl Bridge {
    /// The mailbox for `event_loop`, binding (and registering the reader) on first use;
    /// `None` when this client is already bound to another loop.
    fn mailbox_for(&self, event_loop: &Bound<'_, PyAny>) -> PyResult<Option<Arc<Mailbox>>> {
        let mut binding = match self.binding.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        forget_if_inherited(&mut binding);
        if let Some(b) = binding.as_ref() {
            let bound = b.event_loop.bind(event_loop.py());
            if bound.is(event_loop) {
                return Ok(Some(b.mailbox.clone()));
            }
            let bound_closed = bound
                .call_method0(intern!(event_loop.py(), "is_closed"))
                .and_then(|c| c.is_truthy())
                .unwrap_or(false);
            if !bound_closed {
                return Ok(None);
            }
            // The bound loop is gone (e.g. a second `asyncio.run`): bind to this one instead.
            // Its reader went with the closed loop; calls still running take the plain route.
            drop(b.mailbox.close());
        }
        let mailbox = Arc::new(Mailbox::new(event_loop.clone().unbind())?);
        let reader = MailboxReader {
            mailbox: mailbox.clone(),
        };
        event_loop.call_method1(
            intern!(event_loop.py(), "add_reader"),
            (mailbox.wake_rx.as_raw_fd(), reader),
        )?;
        *binding = Some(Binding {
            pid: this_process(),
            event_loop: event_loop.clone().unbind(),
            mailbox: mailbox.clone(),
        });
        Ok(Some(mailbox))
    }

    /// Unregister the reader (on `aclose`): the next call binds afresh.
    pub fn unbind(&self, py: Python<'_>) {
        let taken = match self.binding.lock() {
            Ok(mut guard) => {
                forget_if_inherited(&mut guard);
                guard.take()
            }
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                forget_if_inherited(&mut guard);
                guard.take()
            }
        };
        if let Some(b) = taken {
            let event_loop = b.event_loop.bind(py);
            let closed = event_loop
                .call_method0(intern!(py, "is_closed"))
                .and_then(|c| c.is_truthy())
                .unwrap_or(true);
            if !closed {
                let _ = event_loop.call_method1(
                    intern!(py, "remove_reader"),
                    (b.mailbox.wake_rx.as_raw_fd(),),
                );
            }
            // Calls already finished settle now; calls still running take the plain route.
            for (future, completion) in b.mailbox.close() {
                completion.settle(py, future.bind(py));
            }
        }
    }

    /// Hand `work` to tokio and return an asyncio future of its result; with `trace`, the
    /// exchanges it made are appended to that list before the future settles.
    pub fn spawn<'py, T, F>(
        &self,
        py: Python<'py>,
        work: F,
        trace: Option<Bound<'py, PyList>>,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        T: ToPy,
        F: Future<Output = Result<T, OrderError>> + Send + 'static,
    {
        let event_loop = running_loop(py)?;
        let future = event_loop.call_method0(intern!(py, "create_future"))?;
        let future_ref = future.clone().unbind();
        let runtime = runtime().map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!(
                "cannot start the tokio runtime: {e}"
            ))
        })?;
        let target: TraceTarget = trace.map(|list| (list.unbind(), Arc::new(Recorder::default())));
        let recorder = target.as_ref().map(|(_, recorder)| recorder.clone());
        match self.mailbox_for(&event_loop)? {
            Some(mailbox) => runtime.spawn(async move {
                let outcome = run(work, recorder).await;
                let finished = Finished {
                    outcome,
                    trace: target,
                };
                mailbox.post((future_ref, Box::new(finished)));
            }),
            None => {
                // Used from another loop than the bound one: the plain route.
                let loop_ref = event_loop.unbind();
                runtime.spawn(async move {
                    let outcome = run(work, recorder).await;
                    let finished = Finished {
                        outcome,
                        trace: target,
                    };
                    hand_over(&loop_ref, future_ref, Box::new(finished));
                })
            }
        };
        Ok(future)
    }
}

/// Forget (without dropping) a binding made by the parent of a fork: its event loop is the
/// parent's (removing the reader would change the epoll set the parent shares), and its socket
/// pair stays open so no later socket reuses the numbers the inherited loop object knows.
fn forget_if_inherited(binding: &mut Option<Binding>) {
    if binding.as_ref().is_some_and(|b| b.pid != this_process()) {
        std::mem::forget(binding.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(Arc<AtomicUsize>);

    impl Completion for Counted {
        fn settle(self: Box<Self>, _py: Python<'_>, _future: &Bound<'_, PyAny>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Wake-up bytes waiting on the loop's end of the socket pair (drains them).
    fn wake_bytes(mailbox: &Mailbox) -> usize {
        let mut buf = [0u8; 8];
        (&mailbox.wake_rx).read(&mut buf).unwrap_or(0)
    }

    #[test]
    fn one_wake_byte_per_batch_and_none_lost_after_a_take() {
        Python::initialize();
        let settled = Arc::new(AtomicUsize::new(0));
        Python::attach(|py| {
            let mailbox = Mailbox::new(py.None()).unwrap();
            let entry = || -> Entry { (py.None(), Box::new(Counted(settled.clone()))) };
            mailbox.post(entry());
            mailbox.post(entry());
            // Two posts, one byte: the second found the box non-empty.
            assert_eq!(wake_bytes(&mailbox), 1);
            let taken = mailbox.take();
            assert_eq!(taken.len(), 2);
            for (future, completion) in taken {
                completion.settle(py, future.bind(py));
            }
            assert_eq!(settled.load(Ordering::SeqCst), 2);
            // After a take the box is empty again: the next post must wake the loop.
            mailbox.post(entry());
            assert_eq!(wake_bytes(&mailbox), 1);
            assert_eq!(mailbox.take().len(), 1);
            // Closed: what waits comes back, and `take` finds nothing any more.
            mailbox.post(entry());
            assert_eq!(mailbox.close().len(), 1);
            assert!(mailbox.take().is_empty());
        });
    }

    #[test]
    fn panics_in_the_work_become_values() {
        let outcome = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(run::<(), _>(
                async {
                    let empty: Vec<u8> = Vec::new();
                    let _ = empty[3];
                    Ok(())
                },
                None,
            ));
        match outcome {
            Outcome::Panicked(text) => assert!(text.contains("index out of bounds")),
            _ => panic!("the panic was not caught"),
        }
    }
}
