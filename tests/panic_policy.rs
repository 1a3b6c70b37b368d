//! The process-wide panic policy (`steerd::panics`), in its own test binary because it
//! installs a panic hook: a panic inside `contain` comes back as an error and the
//! process goes on; a panic anywhere else aborts the process (SIGABRT), as `main` runs
//! it. The abort case re-runs this binary as a child with `STEERD_PANIC_CHILD` set.

use std::process::Command;

fn child(mode: &str) -> std::process::Output {
    Command::new(std::env::current_exe().expect("test binary path"))
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env("STEERD_PANIC_CHILD", mode)
        .output()
        .expect("run the child")
}

/// Does nothing unless run as the child; then installs the hook and panics as told.
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var("STEERD_PANIC_CHILD") else {
        return;
    };
    steerd::panics::install_hook();
    match mode.as_str() {
        "contained" => {
            let r = std::thread::Builder::new()
                .name("tpe-shard-0".into())
                .spawn(|| steerd::panics::contain(|| -> u32 { panic!("bad model") }))
                .unwrap()
                .join()
                .expect("the thread ends normally");
            assert_eq!(r, Err("bad model".to_string()));
            println!("CHILD-SURVIVED");
        }
        "worker" => {
            let _ = std::thread::Builder::new()
                .name("worker-1".into())
                .spawn(|| panic!("bug on the fast path"))
                .unwrap()
                .join();
            println!("CHILD-SURVIVED");
        }
        other => panic!("unknown mode {other}"),
    }
}

#[test]
fn a_contained_panic_is_returned_and_the_process_goes_on() {
    let out = child("contained");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("CHILD-SURVIVED"), "{stdout}");
    assert!(
        !stderr.contains("bad model"),
        "the hook leaves a contained panic to its caller: {stderr}"
    );
}

#[test]
fn a_panic_outside_contain_aborts_the_process() {
    let out = child("worker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains("CHILD-SURVIVED"), "{stdout}");
    assert!(stderr.contains("bug on the fast path"), "{stderr}");
    assert!(stderr.contains("aborting"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(6), "SIGABRT: {:?}", out.status);
    }
}
