//! Routes files: parse and write (cold).
//!
//! # Format
//!
//! UTF-8 text, one route per line (see also `docs/routes-format.md`):
//!
//! ```text
//! # comment: from '#' to the end of the line
//! 0.0.0.0/0          upstream            # default route
//! 10.0.0.0/8         core1,core2         # ECMP over two next hops
//! 192.0.2.0/24       via edge1           # optional keyword "via"
//! 2001:db8::/32      via core1, core2    # spaces after commas are fine
//! ```
//!
//! * `PREFIX [via] NAME[,NAME...]`. `PREFIX` is an IPv4 or IPv6 CIDR prefix with the host
//!   bits zero (`10.0.0.0/8`, not `10.0.0.1/8`; `/32` or `/128` for a single host).
//! * Each `NAME` is a next hop defined in the config: letters, digits, `_`, `-`, `.`, `:`.
//!   Several names make an ECMP group; a name listed twice gets twice the share. `via` is
//!   a keyword, not a name.
//! * Blank lines and comments are ignored; leading/trailing spaces and tabs, CRLF line ends
//!   and a leading byte-order mark are accepted.
//! * A prefix may appear once per file.
//!
//! Every error names the file, the 1-based line and the offending field, with a hint.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::prefix::{Prefix, PrefixError};

/// One route of a routes file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination prefix.
    pub prefix: Prefix,
    /// Next-hop names (several = ECMP).
    pub next_hops: Vec<String>,
    /// 1-based line in the file it came from (0 if it did not come from a file).
    pub line: usize,
}

impl fmt::Display for RouteSpec {
    /// The route as a routes-file line, without the line number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.prefix, self.next_hops.join(","))
    }
}

/// Errors reading a routes file.
#[derive(Debug, Error)]
pub enum RoutesError {
    /// The file could not be read.
    #[error("{}: cannot read routes file: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not UTF-8.
    #[error("{}:{line}: not valid UTF-8; save the routes file as UTF-8 text", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Line of the first bad byte.
        line: usize,
    },
    /// The first field is not a canonical prefix.
    #[error("{}:{line}: prefix \"{text}\": {source}", path.display())]
    Prefix {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// The field.
        text: String,
        /// What is wrong with it.
        source: PrefixError,
    },
    /// A prefix without next hop.
    #[error(
        "{}:{line}: route {prefix} has no next hop; write \"{prefix} NAME\" or \
         \"{prefix} via NAME[,NAME...]\"",
        path.display()
    )]
    MissingNextHop {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// The prefix.
        prefix: Prefix,
    },
    /// An empty name in a comma list (`a,,b`, `a,`).
    #[error(
        "{}:{line}: empty next-hop name in \"{field}\"; separate names with single commas, \
         e.g. nh0,nh1",
        path.display()
    )]
    EmptyNextHop {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// The next-hop list.
        field: String,
    },
    /// A name with characters a name cannot have.
    #[error(
        "{}:{line}: next hop \"{name}\": a name may contain only letters, digits, \
         '_', '-', '.' and ':'",
        path.display()
    )]
    BadNextHopName {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// The name.
        name: String,
    },
    /// Text after the next-hop list.
    #[error(
        "{}:{line}: unexpected \"{field}\" after the next hops; list ECMP next hops with \
         commas (nh0,nh1), and start comments with '#'",
        path.display()
    )]
    UnexpectedField {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// The field.
        field: String,
    },
    /// The same prefix twice.
    #[error(
        "{}:{line}: prefix {prefix} already has a route on line {first_line}; \
         keep one of the two (for ECMP list all next hops on one line: {prefix} a,b)",
        path.display()
    )]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// The second line.
        line: usize,
        /// The first line.
        first_line: usize,
        /// The prefix.
        prefix: Prefix,
    },
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// Reads and parses the routes file at `path`.
pub fn read_routes(path: &Path) -> Result<Vec<RouteSpec>, RoutesError> {
    let bytes = std::fs::read(path).map_err(|source| RoutesError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        RoutesError::NotUtf8 {
            path: path.to_path_buf(),
            line: 1 + good.iter().filter(|&&b| b == b'\n').count(),
        }
    })?;
    parse_routes(&text, path)
}

/// Parses routes-file `text`; `path` is used in error messages only.
pub fn parse_routes(text: &str, path: &Path) -> Result<Vec<RouteSpec>, RoutesError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut routes = Vec::new();
    let mut first_seen: HashMap<Prefix, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split_once('#').map_or(raw, |(before, _)| before);
        let mut fields = content.split_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        let prefix: Prefix = first.parse().map_err(|source| RoutesError::Prefix {
            path: path.to_path_buf(),
            line,
            text: first.to_string(),
            source,
        })?;
        let mut next = fields.next();
        if next == Some("via") {
            next = fields.next();
        }
        let Some(list0) = next else {
            return Err(RoutesError::MissingNextHop {
                path: path.to_path_buf(),
                line,
                prefix,
            });
        };
        // Join "a, b" / "a ,b" into one list; anything else after the list is an error.
        // (Allocates only when the list was split by spaces.)
        let mut joined: Option<String> = None;
        for field in fields {
            let list = joined.as_deref().unwrap_or(list0);
            if list.ends_with(',') || field.starts_with(',') {
                joined
                    .get_or_insert_with(|| list0.to_string())
                    .push_str(field);
            } else {
                return Err(RoutesError::UnexpectedField {
                    path: path.to_path_buf(),
                    line,
                    field: field.to_string(),
                });
            }
        }
        let list = joined.as_deref().unwrap_or(list0);
        let mut next_hops = Vec::new();
        for name in list.split(',') {
            if name.is_empty() {
                return Err(RoutesError::EmptyNextHop {
                    path: path.to_path_buf(),
                    line,
                    field: list.to_string(),
                });
            }
            if !valid_name(name) || name == "via" {
                return Err(RoutesError::BadNextHopName {
                    path: path.to_path_buf(),
                    line,
                    name: name.to_string(),
                });
            }
            next_hops.push(name.to_string());
        }
        if let Some(&first_line) = first_seen.get(&prefix) {
            return Err(RoutesError::Duplicate {
                path: path.to_path_buf(),
                line,
                first_line,
                prefix,
            });
        }
        first_seen.insert(prefix, line);
        routes.push(RouteSpec {
            prefix,
            next_hops,
            line,
        });
    }
    Ok(routes)
}

/// Writes `routes` in the routes-file format, one `PREFIX NAME[,NAME...]` line each.
pub fn write_routes<W: Write>(out: &mut W, routes: &[RouteSpec]) -> io::Result<()> {
    for r in routes {
        writeln!(out, "{r}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn parse(text: &str) -> Result<Vec<RouteSpec>, RoutesError> {
        parse_routes(text, Path::new("routes.txt"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_all_forms() {
        let text = "\u{feff}# routes\n\
                    \n\
                    0.0.0.0/0 upstream # default\r\n\
                    10.0.0.0/8   core1,core2\n\
                    \t192.0.2.0/24 via edge1\n\
                    2001:db8::/32 via core1, core2\n\
                    2001:db8:1::/48 core1 ,core2 , core3\n\
                    198.51.100.7/32 nh.a-b_c:1\n";
        let r = parse(text).unwrap();
        let got: Vec<(String, Vec<&str>, usize)> = r
            .iter()
            .map(|s| {
                (
                    s.prefix.to_string(),
                    s.next_hops.iter().map(String::as_str).collect(),
                    s.line,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("0.0.0.0/0".into(), vec!["upstream"], 3),
                ("10.0.0.0/8".into(), vec!["core1", "core2"], 4),
                ("192.0.2.0/24".into(), vec!["edge1"], 5),
                ("2001:db8::/32".into(), vec!["core1", "core2"], 6),
                ("2001:db8:1::/48".into(), vec!["core1", "core2", "core3"], 7),
                ("198.51.100.7/32".into(), vec!["nh.a-b_c:1"], 8),
            ]
        );
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# only\n   \n").unwrap().is_empty());
    }

    #[test]
    fn errors_name_file_line_and_field() {
        assert_eq!(
            err("\n10.0.0.1/8 nh0\n"),
            "routes.txt:2: prefix \"10.0.0.1/8\": host bits set (did you mean 10.0.0.0/8?)"
        );
        assert_eq!(
            err("10.0.0.0/8\n"),
            "routes.txt:1: route 10.0.0.0/8 has no next hop; write \"10.0.0.0/8 NAME\" or \
             \"10.0.0.0/8 via NAME[,NAME...]\""
        );
        assert!(err("10.0.0.0/8 via # x\n").contains("has no next hop"));
        assert_eq!(
            err("10.0.0.0/8 a,,b\n"),
            "routes.txt:1: empty next-hop name in \"a,,b\"; separate names with single \
             commas, e.g. nh0,nh1"
        );
        assert!(err("10.0.0.0/8 a,\n").contains("empty next-hop name in \"a,\""));
        assert_eq!(
            err("10.0.0.0/8 a b\n"),
            "routes.txt:1: unexpected \"b\" after the next hops; list ECMP next hops with \
             commas (nh0,nh1), and start comments with '#'"
        );
        assert!(err("10.0.0.0/8 a/b\n").contains("next hop \"a/b\": a name may contain"));
        assert!(err("10.0.0.0/8 via via\n").contains("next hop \"via\""));
        assert_eq!(
            err("10.0.0.0/8 a\n11.0.0.0/8 b\n10.0.0.0/8 c\n"),
            "routes.txt:3: prefix 10.0.0.0/8 already has a route on line 1; keep one of the \
             two (for ECMP list all next hops on one line: 10.0.0.0/8 a,b)"
        );
        assert!(err("nh0 10.0.0.0/8\n").contains("prefix \"nh0\": \"nh0\" is not an IPv4"));
        assert!(err("10.0.0.0 nh0\n").contains("missing \"/LENGTH\""));
    }

    #[test]
    fn read_reports_io_and_utf8_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        let e = read_routes(&missing).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: cannot read routes file", missing.display())));
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, b"10.0.0.0/8 a\n11.0.0.0/8 \xff\n").unwrap();
        assert_eq!(
            read_routes(&bad).unwrap_err().to_string(),
            format!(
                "{}:2: not valid UTF-8; save the routes file as UTF-8 text",
                bad.display()
            )
        );
        let good = dir.path().join("good.txt");
        std::fs::write(&good, "10.0.0.0/8 a\n").unwrap();
        assert_eq!(read_routes(&good).unwrap().len(), 1);
    }

    fn arb_route() -> impl Strategy<Value = RouteSpec> {
        let name = "[a-z][a-z0-9_.:-]{0,6}".prop_filter("keyword", |n| n != "via");
        (
            any::<bool>(),
            any::<u128>(),
            0u8..=128,
            proptest::collection::vec(name, 1..4),
        )
            .prop_map(|(v4, a, l, next_hops)| {
                let prefix = if v4 {
                    Prefix::new_masked(IpAddr::V4(Ipv4Addr::from(a as u32)), l % 33)
                } else {
                    Prefix::new_masked(IpAddr::V6(Ipv6Addr::from(a)), l)
                };
                RouteSpec {
                    prefix,
                    next_hops,
                    line: 0,
                }
            })
    }

    proptest! {
        #[test]
        fn write_parse_round_trip(routes in proptest::collection::vec(arb_route(), 0..20)) {
            let mut routes = routes;
            let mut seen = std::collections::HashSet::new();
            routes.retain(|r| seen.insert(r.prefix));
            let mut buf = Vec::new();
            write_routes(&mut buf, &routes).unwrap();
            let text = String::from_utf8(buf).unwrap();
            let parsed = parse(&text).unwrap();
            for (i, r) in routes.iter_mut().enumerate() {
                r.line = i + 1;
            }
            prop_assert_eq!(parsed, routes);
        }
    }
}
