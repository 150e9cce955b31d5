//! Signal dispositions, masks, pending signals, sigaltstack.

use crate::harness::{scenario, Spawn, READY_TIMEOUT, RESULT_TIMEOUT};

#[test]
fn signals() {
    scenario("signals", &[]);
}

/// SA_ONSTACK handlers in threads with and without an alternate stack of their own, and in a forked
/// child: after restore each thread has the altstack its image recorded (none is SS_DISABLE, not the
/// stack the new task inherited from rcr) and its first signal runs the handler.
#[test]
fn sa_onstack_handlers_after_restore() {
    scenario("onstack", &[]);
}

fn python_signals(args: &[&str]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/py_signals.py");
    let Some(python) = ["/usr/bin/python3", "/usr/local/bin/python3"].into_iter().find(|p| std::path::Path::new(p).exists()) else {
        println!("SKIPPED: no python3");
        return;
    };
    let mut argv = vec![python.to_string(), script.to_string_lossy().into_owned(), "out.txt".into()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let mut s = Spawn::command(argv).start();
    s.wait_ready(READY_TIMEOUT);
    s.checkpoint();
    s.signal(libc::SIGTERM);
    if let Err(e) = s.wait_result(RESULT_TIMEOUT) {
        panic!("{e}");
    }
}

/// A Python program (handlers installed with SA_ONSTACK, no altstack) signalled after restore.
#[test]
fn python_signal_handlers() {
    python_signals(&[]);
}

/// The same with faulthandler enabled: the main thread has an altstack of its own.
#[test]
fn python_signal_handlers_faulthandler() {
    python_signals(&["faulthandler"]);
}

/// A task dumped while it waits in sigsuspend with a mask of its own keeps that mask, restored and left
/// running after `dump -R`: /proc shows the call's temporary mask meanwhile, and a dump that recorded
/// that one (or remote calls that dropped the kernel's saved mask) would make it the task's for good.
#[test]
fn sigsuspend_keeps_the_task_s_own_mask() {
    for leave_running in [false, true] {
        let mut s = crate::harness::Subject::spawn("sigsuspend_mask", &[]);
        s.wait_ready(READY_TIMEOUT);
        crate::harness::wait_syscall(&s, &[libc::SYS_rt_sigsuspend], std::time::Duration::from_secs(10));
        if leave_running {
            s.dump(&["-R"]);
        } else {
            s.checkpoint();
        }
        s.signal(libc::SIGTERM);
        if let Err(e) = s.wait_result(RESULT_TIMEOUT) {
            panic!("leave_running {leave_running}: {e}");
        }
    }
}
