//! Panic policy (cold).
//!
//! steerd is built with `panic = "unwind"` so that the few places that run code it does
//! not control can contain a panic: building and running a prediction model (tract) on
//! the TPE threads. Everything else keeps the fail-stop behaviour of `panic = "abort"`:
//! [`install_hook`] (called by `main`) makes a panic outside a [`contain`] scope print
//! its message and abort the process, so a bug on a worker or the control thread never
//! leaves a half-running appliance behind.
//!
//! A panic inside [`contain`] unwinds to it and comes back as an `Err` with the panic's
//! message; the caller counts it, logs it and falls back (a baseline, the previous model).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    /// Nesting depth of [`contain`] scopes on this thread.
    static CONTAINED: Cell<u32> = const { Cell::new(0) };
}

/// Whether a panic on this thread now would be contained (inside [`contain`]).
pub fn contained() -> bool {
    CONTAINED.with(Cell::get) > 0
}

/// Installs the process's panic hook: inside a [`contain`] scope the panic is left to
/// its caller (which reports it); anywhere else the default hook prints the message and
/// location, then the process aborts.
pub fn install_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if contained() {
            return;
        }
        default(info);
        eprintln!(
            "steerd: panic on thread {:?} outside a contained scope; aborting",
            std::thread::current().name().unwrap_or("?")
        );
        std::process::abort();
    }));
}

/// Runs `f`; a panic inside it is caught and returned as `Err(message)`.
pub fn contain<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            CONTAINED.with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    CONTAINED.with(|c| c.set(c.get() + 1));
    let guard = Depth;
    let r = catch_unwind(AssertUnwindSafe(f));
    drop(guard);
    r.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic with a non-string payload".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contain_returns_the_value_or_the_panic_message() {
        assert_eq!(contain(|| 7), Ok(7));
        assert!(!contained());
        let e = contain(|| -> u32 { panic!("model blew up at {}", 3) }).unwrap_err();
        assert_eq!(e, "model blew up at 3");
        assert!(!contained(), "the scope ends with the panic");
        let e = contain(|| -> u32 { std::panic::panic_any(5u8) }).unwrap_err();
        assert!(e.contains("non-string"), "{e}");
    }

    #[test]
    fn scopes_nest_and_end() {
        let r = contain(|| {
            assert!(contained());
            let inner = contain(|| -> () { panic!("inner") });
            assert!(inner.is_err());
            assert!(contained(), "still inside the outer scope");
            1
        });
        assert_eq!(r, Ok(1));
        assert!(!contained());
    }
}
