//! Signals (cold): SIGINT and SIGTERM request a graceful stop (read by the controller
//! loop), SIGHUP a config reload (read by the `ctl` thread). The handlers only store
//! to an atomic, which is async-signal-safe; the threads poll the flags.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_hup(_: libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

/// Installs SIGINT/SIGTERM handlers (graceful stop) and a SIGHUP handler (reload).
pub fn install_signal_handlers() {
    let handlers: [(libc::c_int, extern "C" fn(libc::c_int)); 3] = [
        (libc::SIGINT, on_stop),
        (libc::SIGTERM, on_stop),
        (libc::SIGHUP, on_hup),
    ];
    for (sig, f) in handlers {
        // SAFETY: the handlers are async-signal-safe (one atomic store each) and have the
        // signature `signal` expects; replacing the default disposition is intended.
        unsafe {
            libc::signal(sig, f as *const () as libc::sighandler_t);
        }
    }
}

/// True once SIGINT or SIGTERM arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// True (once) when SIGHUP arrived since the last call.
pub fn take_reload() -> bool {
    RELOAD.swap(false, Ordering::SeqCst)
}
