//! The engine's top-level error: each module has its own error enum, wrapped here, and the variants
//! below say on which task, fd or object a step failed, keeping the error that made it fail as their
//! `source()`. Nothing is recognised by its text: callers match the variants.
//!
//! Context is added where the pid, fd or object is known, with [`Context`]:
//! `sys::call(..).at_task(pid, "restoring the signal mask")?` or `open(..).at_fd(pid, fd)?`.

use std::borrow::Cow;
use std::fmt;

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the engine returns. Messages say what failed, on which object, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{ctx}: {source}")]
    Io {
        ctx: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Compel(#[from] crate::compel::CompelError),
    #[error(transparent)]
    Proc(#[from] crate::proc::ProcError),
    #[error(transparent)]
    Sys(#[from] crate::sys::SysError),
    #[error(transparent)]
    Check(#[from] crate::check::CheckError),
    #[error(transparent)]
    Plugin(#[from] crate::plugins::PluginError),
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    /// A step on one task failed: "pid P: STEP: SOURCE" ("pid P: SOURCE" without a step).
    #[error("pid {pid}: {}{source}", prefix(step))]
    Task {
        pid: i32,
        step: Cow<'static, str>,
        #[source]
        source: Box<Error>,
    },
    /// Something about one fd of a task failed: "pid P: fd F (OBJECT): SOURCE".
    #[error("pid {pid}: fd {fd}{}: {source}", paren(object))]
    Fd {
        pid: i32,
        fd: i32,
        /// What the fd is ("epoll", the path), where the message should say it.
        object: Option<String>,
        #[source]
        source: Box<Error>,
    },
    /// Something about an object that is no fd of a task failed (a file of files.img, a timer, an area,
    /// a watch): "OBJECT: SOURCE".
    #[error("{object}: {source}")]
    Object {
        object: String,
        #[source]
        source: Box<Error>,
    },
    /// Something rcr does not handle (a kind of file or memory, a state of an object): "WHY; WHAT_TO_DO".
    #[error("{why}{}", suffix(what_to_do))]
    Unsupported { why: String, what_to_do: Option<String> },
    /// The system at restore differs from the checkpoint (a pid taken, a file changed or gone).
    #[error("{what}{}", suffix(what_to_do))]
    Conflict { what: String, what_to_do: Option<String> },
    /// An image that decodes but makes no sense: "IMAGE: WHAT".
    #[error("{image}: {what}")]
    BadImage { image: String, what: String },
    /// The kernel answered in a way rcr does not expect (an fdinfo without a line, a short write).
    #[error("{0}")]
    Kernel(String),
    /// rcr lacks a privilege a step needs (a capability, a hard limit); the message says what to do.
    #[error("{what}")]
    Privilege { what: String },
    /// A system call made inside the task failed: "CALL failed: ERRNO".
    #[error("{call} failed: {source} (errno {})", source.raw_os_error().unwrap_or(0))]
    Remote {
        call: String,
        #[source]
        source: std::io::Error,
    },
    /// This kernel lacks a feature that a dump or a restore needs.
    #[error("this kernel lacks {name} ({source}), which rcr needs to {needed_for}{}; {untouched}", check_hint(name))]
    MissingFeature {
        name: &'static str,
        needed_for: &'static str,
        /// What the failure left as it was ("nothing was touched").
        untouched: &'static str,
        #[source]
        source: Box<Error>,
    },
    /// The command was cancelled by a signal: "WHAT interrupted; LEFT".
    #[error("{what} interrupted; {left}")]
    Interrupted { what: String, left: &'static str },
    /// A failure, and the state it left things in: "SOURCE; LEFT" (the process was left running).
    #[error("{source}; {left}")]
    Left {
        left: &'static str,
        #[source]
        source: Box<Error>,
    },
    /// A listener of an action point (an action script, the status fd) failed.
    #[error("{action} action failed: {source}")]
    Action {
        action: &'static str,
        #[source]
        source: crate::notify::ListenerError,
    },
    /// A waiting step that ran out of time.
    #[error("{0}")]
    Timeout(String),
    /// A state rcr's own code should never reach; a bug in rcr.
    #[error("internal: {0}")]
    Internal(String),
}

fn prefix(step: &str) -> String {
    if step.is_empty() { String::new() } else { format!("{step}: ") }
}

fn paren(object: &Option<String>) -> String {
    object.as_ref().map(|o| format!(" ({o})")).unwrap_or_default()
}

fn suffix(what_to_do: &Option<String>) -> String {
    what_to_do.as_ref().map(|w| format!("; {w}")).unwrap_or_default()
}

fn check_hint(name: &str) -> String {
    if crate::check::feature_names().contains(&name) { format!("; `rcr check --feature {name}` says more") } else { String::new() }
}

impl Error {
    /// Something rcr does not handle, with what the user can do about it.
    pub fn unsupported(why: impl Into<String>, what_to_do: impl Into<String>) -> Error {
        Error::Unsupported { why: why.into(), what_to_do: Some(what_to_do.into()) }
    }

    /// Something rcr does not handle, and nothing the user can do about it.
    pub fn not_supported(why: impl Into<String>) -> Error {
        Error::Unsupported { why: why.into(), what_to_do: None }
    }

    /// The system differs from the checkpoint.
    pub fn conflict(what: impl Into<String>, what_to_do: Option<&str>) -> Error {
        Error::Conflict { what: what.into(), what_to_do: what_to_do.map(str::to_string) }
    }

    /// The system differs from the checkpoint, as `what` says (with what to do).
    pub fn changed(what: impl Into<String>) -> Error {
        Error::Conflict { what: what.into(), what_to_do: None }
    }

    /// rcr lacks a privilege (a capability, a limit) a step needs, as `what` says (with what to do).
    pub fn privilege(what: impl Into<String>) -> Error {
        Error::Privilege { what: what.into() }
    }

    /// A checkpoint whose images decode but disagree with each other or with what rcr can hold, as
    /// `what` says (naming the image where it can).
    pub fn corrupt(what: impl Into<String>) -> Error {
        Error::BadImage { image: "the checkpoint".into(), what: what.into() }
    }

    /// An image that makes no sense.
    pub fn bad_image(image: impl fmt::Display, what: impl Into<String>) -> Error {
        Error::BadImage { image: image.to_string(), what: what.into() }
    }

    /// A remote system call that returned `ret`, a negative errno.
    pub fn remote(call: impl Into<String>, ret: i64) -> Error {
        Error::Remote { call: call.into(), source: std::io::Error::from_raw_os_error((-ret) as i32) }
    }

    /// This error, at step `step` of task `pid`.
    pub fn at_task(self, pid: i32, step: impl Into<Cow<'static, str>>) -> Error {
        Error::Task { pid, step: step.into(), source: Box::new(self) }
    }

    /// This error, at fd `fd` of task `pid`.
    pub fn at_fd(self, pid: i32, fd: i32, object: Option<String>) -> Error {
        Error::Fd { pid, fd, object, source: Box::new(self) }
    }

    /// This error, about `object`.
    pub fn at(self, object: impl Into<String>) -> Error {
        Error::Object { object: object.into(), source: Box::new(self) }
    }

    /// This error, with what it left as it was.
    pub fn left(self, left: &'static str) -> Error {
        Error::Left { left, source: Box::new(self) }
    }

    /// The pid this error is about, the innermost one named.
    pub fn pid(&self) -> Option<i32> {
        match self {
            Error::Task { pid, source, .. } | Error::Fd { pid, source, .. } => source.pid().or(Some(*pid)),
            Error::Object { source, .. } | Error::Left { source, .. } | Error::MissingFeature { source, .. } => source.pid(),
            _ => None,
        }
    }
}

/// Adds the task, fd or object to the error of a `Result`, so call sites stay short.
pub trait Context<T> {
    /// The error happened at step `step` of task `pid`.
    fn at_task(self, pid: i32, step: impl Into<Cow<'static, str>>) -> Result<T>;
    /// The error happened at step `step()` (built only on error) of task `pid`.
    fn at_task_with(self, pid: i32, step: impl FnOnce() -> String) -> Result<T>;
    /// The error is about fd `fd` of task `pid`.
    fn at_fd(self, pid: i32, fd: i32) -> Result<T>;
    /// The error is about fd `fd` of task `pid`, which is `object()` (built only on error).
    fn at_fd_of(self, pid: i32, fd: i32, object: impl FnOnce() -> String) -> Result<T>;
    /// The error is about `object()` (built only on error).
    fn at(self, object: impl FnOnce() -> String) -> Result<T>;
    /// The error left things as `left` says.
    fn left(self, left: &'static str) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn at_task(self, pid: i32, step: impl Into<Cow<'static, str>>) -> Result<T> {
        self.map_err(|e| e.into().at_task(pid, step))
    }
    fn at_task_with(self, pid: i32, step: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.into().at_task(pid, step()))
    }
    fn at_fd(self, pid: i32, fd: i32) -> Result<T> {
        self.map_err(|e| e.into().at_fd(pid, fd, None))
    }
    fn at_fd_of(self, pid: i32, fd: i32, object: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.into().at_fd(pid, fd, Some(object())))
    }
    fn at(self, object: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.into().at(object()))
    }
    fn left(self, left: &'static str) -> Result<T> {
        self.map_err(|e| e.into().left(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn sys_err() -> Error {
        crate::sys::SysError::Call { call: "ioctl", ctx: "fd 5".into(), errno: nix::errno::Errno::EBADF }.into()
    }

    #[test]
    fn task_and_fd_errors_name_pid_fd_and_step_and_keep_the_source() {
        let e: Result<()> = Err(sys_err());
        let e = e.at_fd_of(1234, 5, || "/dev/kfd".into()).at_task(1234, "restoring files").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("pid 1234: restoring files: pid 1234: fd 5 (/dev/kfd): ioctl(fd 5) failed"), "{s}");
        assert_eq!(e.pid(), Some(1234));
        // source() walks Task -> Fd -> Sys, which is the original error.
        let fd = e.source().expect("the fd error");
        assert!(fd.to_string().starts_with("pid 1234: fd 5 (/dev/kfd): "), "{fd}");
        let sys = fd.source().expect("the sys error");
        // A boxed source is seen as the box.
        let sys = sys.downcast_ref::<Box<Error>>().map(|b| &**b).or_else(|| sys.downcast_ref::<Error>());
        assert!(sys.is_some_and(|e| matches!(e, Error::Sys(crate::sys::SysError::Call { errno: nix::errno::Errno::EBADF, .. }))), "{sys:?}");
    }

    #[test]
    fn io_and_remote_errors_keep_the_os_error() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let e: Result<()> = Err(Error::Io { ctx: "opening /x".into(), source: io });
        let e = e.at_task(7, "").unwrap_err();
        assert!(e.to_string().starts_with("pid 7: opening /x: "), "{e}");
        let io = e.source().and_then(|s| s.source()).and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(io.and_then(|e| e.raw_os_error()), Some(libc::ENOENT));

        let e = Error::remote("mmap", -(libc::ENOMEM as i64)).at_task(9, "mapping the vDSO");
        let s = e.to_string();
        assert!(s.starts_with("pid 9: mapping the vDSO: mmap failed: ") && s.ends_with(&format!("(errno {})", libc::ENOMEM)), "{s}");
        let os = e.source().and_then(|s| s.source()).and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(os.and_then(|e| e.raw_os_error()), Some(libc::ENOMEM));
    }

    #[test]
    fn refusals_say_what_to_do() {
        let e = Error::unsupported("file 3 is a terminal", "restore this shell job with --shell-job");
        assert_eq!(e.to_string(), "file 3 is a terminal; restore this shell job with --shell-job");
        let e = Error::not_supported("a socket").left("the process was left running");
        assert_eq!(e.to_string(), "a socket; the process was left running");
    }
}
