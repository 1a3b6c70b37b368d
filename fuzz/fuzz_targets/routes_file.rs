//! The routes-file parser on any text: never panics, every error names a line of the
//! text, and what parses writes back to a file that parses to the same routes.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use steerd::route::file::{RoutesError, parse_routes, write_routes};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.routes");
    let routes = match parse_routes(text, path) {
        Ok(r) => r,
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz.routes:"), "{msg}");
            let line = line_of(&e).unwrap_or_else(|| panic!("no line in {msg:?}"));
            assert!(line >= 1 && line <= text.lines().count(), "{msg}");
            return;
        }
    };
    let mut out = Vec::new();
    write_routes(&mut out, &routes).expect("writes to a Vec");
    let again = parse_routes(std::str::from_utf8(&out).expect("UTF-8 out"), path)
        .expect("what was written parses");
    assert_eq!(again.len(), routes.len());
    for (a, b) in again.iter().zip(&routes) {
        assert_eq!((a.prefix, &a.next_hops), (b.prefix, &b.next_hops));
    }
});

fn line_of(e: &RoutesError) -> Option<usize> {
    let s = e.to_string();
    let rest = s.strip_prefix("fuzz.routes:")?;
    rest.split(':').next()?.parse().ok()
}
