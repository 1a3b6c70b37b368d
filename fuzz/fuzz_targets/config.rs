//! The configuration parser and validator on any text: never panics (a bad config is
//! refused with an error naming the file), and a config it accepts is accepted again
//! from the same text. No files are read: validation only looks at the text. Seeds:
//! conf/ (scripts/fuzz.sh passes it).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use steerd::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text, "fuzz.toml", Path::new("."), false) {
        Ok(c) => {
            let again = Config::from_toml(text, "fuzz.toml", Path::new("."), false)
                .expect("the same text is accepted again");
            assert_eq!(c, again);
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz.toml"), "{msg}");
            // A line of the text, or the one after its last newline (an error at the
            // end of the file, e.g. an unterminated string).
            if let Some(l) = e.line {
                assert!(l >= 1 && l <= text.lines().count() + 1, "{msg}");
            }
        }
    }
});
