//! The control plane's list of routes (cold): the source of truth every table rebuild
//! starts from.
//!
//! Three layers, in order: the config's inline `[[routes]]`, its `routing.routes_file`,
//! and routes given in code (`Appliance::build_with_routes`) form the *base*; `steerd ctl
//! routes add/del` changes form an *overlay* on top of it (an added prefix replaces the
//! base route for that prefix, a deleted one hides it). A reload replaces the base with
//! the new config's and keeps the overlay; a restart forgets the overlay (write a change
//! into the config or the routes file to keep it).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::app::SetupError;
use crate::config::Config;
use crate::route::{self, Prefix, RouteSpec};

/// Where a route came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteOrigin {
    /// An inline `[[routes]]` entry of the config.
    Config,
    /// A line of `routing.routes_file`.
    File,
    /// Given in code when the appliance was built.
    Code,
    /// Added at run time with `steerd ctl routes add`.
    Ctl,
}

impl RouteOrigin {
    /// Stable name (JSON, text output).
    pub fn as_str(self) -> &'static str {
        match self {
            RouteOrigin::Config => "config",
            RouteOrigin::File => "file",
            RouteOrigin::Code => "code",
            RouteOrigin::Ctl => "ctl",
        }
    }
}

/// Base routes plus run-time changes.
#[derive(Clone, Debug, Default)]
pub struct RouteSet {
    base: Vec<(RouteSpec, RouteOrigin)>,
    added: BTreeMap<Prefix, Vec<String>>,
    removed: BTreeSet<Prefix>,
}

/// Why a run-time route change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteChangeError {
    /// `add` of a prefix that already has a route (without `replace`).
    #[error(
        "{prefix} is already routed via {via} (from {origin}); delete it first or add with replace"
    )]
    Exists {
        /// The prefix.
        prefix: Prefix,
        /// Its next hops.
        via: String,
        /// Where it came from.
        origin: &'static str,
    },
    /// `del` of a prefix without a route.
    #[error("no route for {0}")]
    Missing(Prefix),
}

impl RouteSet {
    /// The routes a config (and its routes file) describes, plus `extra` given in code.
    pub fn from_config(cfg: &Config, extra: &[RouteSpec]) -> Result<RouteSet, SetupError> {
        let mut base = Vec::new();
        for (i, r) in cfg.routes.iter().enumerate() {
            let prefix: Prefix = r
                .prefix
                .parse()
                .map_err(|e| cfg.error(&format!("routes[{i}].prefix"), format!("{e}")))?;
            base.push((
                RouteSpec {
                    prefix,
                    next_hops: r.via.names(),
                    line: i + 1,
                },
                RouteOrigin::Config,
            ));
        }
        if let Some(f) = &cfg.routing.routes_file {
            let path = cfg.resolve(f);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                SetupError::Routes(format!(
                    "{}: routing.routes_file: cannot read {}: {e}",
                    cfg.source.name,
                    path.display()
                ))
            })?;
            let more =
                route::parse_routes(&text, &path).map_err(|e| SetupError::Routes(e.to_string()))?;
            // Unknown names here, where the file and line are known (the table build
            // would name only the line).
            for r in &more {
                if let Some(n) = r.next_hops.iter().find(|n| {
                    !n.starts_with(crate::app::CONNECTED_PREFIX)
                        && !cfg.next_hops.iter().any(|h| &h.name == *n)
                }) {
                    let defined: Vec<&str> =
                        cfg.next_hops.iter().map(|h| h.name.as_str()).collect();
                    return Err(SetupError::Routes(format!(
                        "{}:{}: route {}: unknown next hop \"{n}\"; defined next hops: {}",
                        path.display(),
                        r.line,
                        r.prefix,
                        if defined.is_empty() {
                            "none (add [[next_hops]] to the config)".to_string()
                        } else {
                            defined.join(", ")
                        }
                    )));
                }
            }
            base.extend(more.into_iter().map(|r| (r, RouteOrigin::File)));
        }
        base.extend(extra.iter().map(|r| (r.clone(), RouteOrigin::Code)));
        Ok(RouteSet {
            base,
            ..RouteSet::default()
        })
    }

    /// This set's base with `other`'s run-time changes on top (a reload).
    pub fn with_changes_of(mut self, other: &RouteSet) -> RouteSet {
        self.added = other.added.clone();
        self.removed = other.removed.clone();
        self
    }

    /// Number of run-time changes (routes added or replaced, and deleted).
    pub fn changes(&self) -> usize {
        self.added.len() + self.removed.len()
    }

    /// The routes in force, with their origin: base routes not replaced or deleted, then
    /// the added ones in prefix order.
    pub fn effective(&self) -> Vec<(RouteSpec, RouteOrigin)> {
        let mut v: Vec<(RouteSpec, RouteOrigin)> = self
            .base
            .iter()
            .filter(|(r, _)| {
                !self.removed.contains(&r.prefix) && !self.added.contains_key(&r.prefix)
            })
            .cloned()
            .collect();
        v.extend(self.added.iter().map(|(p, nh)| {
            (
                RouteSpec {
                    prefix: *p,
                    next_hops: nh.clone(),
                    line: 0,
                },
                RouteOrigin::Ctl,
            )
        }));
        v
    }

    /// The route specs in force (what a table is built from).
    pub fn specs(&self) -> Vec<RouteSpec> {
        self.effective().into_iter().map(|(r, _)| r).collect()
    }

    fn find(&self, p: &Prefix) -> Option<(Vec<String>, RouteOrigin)> {
        if let Some(nh) = self.added.get(p) {
            return Some((nh.clone(), RouteOrigin::Ctl));
        }
        if self.removed.contains(p) {
            return None;
        }
        self.base
            .iter()
            .find(|(r, _)| r.prefix == *p)
            .map(|(r, o)| (r.next_hops.clone(), *o))
    }

    /// Adds (or with `replace`, replaces) the route for `prefix`.
    pub fn add(
        &mut self,
        prefix: Prefix,
        via: Vec<String>,
        replace: bool,
    ) -> Result<(), RouteChangeError> {
        if !replace && let Some((nh, o)) = self.find(&prefix) {
            return Err(RouteChangeError::Exists {
                prefix,
                via: nh.join(","),
                origin: o.as_str(),
            });
        }
        self.added.insert(prefix, via);
        Ok(())
    }

    /// Deletes the route for `prefix` (whichever layer it came from).
    pub fn del(&mut self, prefix: Prefix) -> Result<(), RouteChangeError> {
        if self.find(&prefix).is_none() {
            return Err(RouteChangeError::Missing(prefix));
        }
        self.added.remove(&prefix);
        if self.base.iter().any(|(r, _)| r.prefix == prefix) {
            self.removed.insert(prefix);
        }
        Ok(())
    }

    /// The routes in force as JSON objects `{prefix, via, origin}`.
    pub fn to_json(&self) -> Vec<Value> {
        self.effective()
            .into_iter()
            .map(|(r, o)| json!({"prefix": r.prefix.to_string(), "via": r.next_hops, "origin": o.as_str()}))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    fn set() -> RouteSet {
        RouteSet {
            base: vec![
                (
                    RouteSpec {
                        prefix: p("10.0.0.0/8"),
                        next_hops: vec!["a".into()],
                        line: 1,
                    },
                    RouteOrigin::Config,
                ),
                (
                    RouteSpec {
                        prefix: p("2001:db8::/32"),
                        next_hops: vec!["b".into()],
                        line: 3,
                    },
                    RouteOrigin::File,
                ),
            ],
            ..RouteSet::default()
        }
    }

    #[test]
    fn unknown_next_hop_in_the_routes_file_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("r.txt"),
            "10.1.0.0/16 nh1\n10.2.0.0/16 nh1,nh9\n",
        )
        .unwrap();
        let cfg = |file: &str| {
            let t = format!(
                "[routing]\nroutes_file = \"{file}\"\n[[ports]]\nname = \"p0\"\nbackend = \"mem\"\n\
                 [[next_hops]]\nname = \"nh1\"\nport = \"p0\"\nmac = \"02:00:00:00:01:01\"\n"
            );
            Config::from_toml(&t, "t.toml", dir.path(), false).unwrap()
        };
        let e = RouteSet::from_config(&cfg("r.txt"), &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "{}:2: route 10.2.0.0/16: unknown next hop \"nh9\"; defined next hops: nh1",
                dir.path().join("r.txt").display()
            )
        );
        std::fs::write(dir.path().join("ok.txt"), "10.1.0.0/16 via nh1\n").unwrap();
        assert_eq!(
            RouteSet::from_config(&cfg("ok.txt"), &[])
                .unwrap()
                .specs()
                .len(),
            1
        );
    }

    /// Errors of the table build name where the route came from: the routes file's line,
    /// the config's `routes[N]`, and for exhausted LPM groups the setting that raises them.
    #[test]
    fn table_build_errors_name_the_routes_place() {
        let dir = tempfile::tempdir().unwrap();
        // Two /25s in different /24s need two tbl8 groups; one is configured.
        std::fs::write(
            dir.path().join("r.txt"),
            "# full table\n10.1.0.0/25 nh1\n10.2.0.0/25 nh1\n",
        )
        .unwrap();
        let cfg = |extra: &str| {
            let t = format!(
                "[routing]\nroutes_file = \"r.txt\"\ntbl8_groups = 1\n[[ports]]\nname = \"p0\"\n\
                 backend = \"mem\"\n[[next_hops]]\nname = \"nh1\"\nport = \"p0\"\n\
                 mac = \"02:00:00:00:01:01\"\n{extra}"
            );
            Config::from_toml(&t, "t.toml", dir.path(), false).unwrap()
        };
        let e = crate::app::build_tables(&cfg(""), &[], None)
            .err()
            .unwrap()
            .to_string();
        let file = dir.path().join("r.txt").display().to_string();
        assert!(
            e.contains(&format!(
                "{file}:3: route 10.2.0.0/25: IPv4 LPM: all 1 tbl8 groups"
            )) && e.contains("t.toml: routing.tbl8_groups is 1"),
            "{e}"
        );
        // A config route and a file route for one prefix: both places named.
        let dup = "[[routes]]\nprefix = \"10.0.0.0/8\"\nvia = \"nh1\"\n\
                   [[routes]]\nprefix = \"10.1.0.0/25\"\nvia = \"nh1\"\n";
        let e = crate::app::build_tables(&cfg(dup), &[], None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains(&format!(
                "{file}:2: route 10.1.0.0/25: the prefix already has a route, \
                 t.toml: routes[1] (10.1.0.0/25); keep one of the two"
            )),
            "{e}"
        );
    }

    #[test]
    fn add_del_overlay() {
        let mut s = set();
        s.add(p("192.0.2.0/24"), vec!["a".into(), "b".into()], false)
            .unwrap();
        assert_eq!(s.specs().len(), 3);
        let e = s.add(p("10.0.0.0/8"), vec!["b".into()], false).unwrap_err();
        assert!(
            e.to_string().contains("already routed via a (from config)"),
            "{e}"
        );
        s.add(p("10.0.0.0/8"), vec!["b".into()], true).unwrap();
        let eff = s.effective();
        let r = eff
            .iter()
            .find(|(r, _)| r.prefix == p("10.0.0.0/8"))
            .unwrap();
        assert_eq!(r.0.next_hops, vec!["b"]);
        assert_eq!(r.1, RouteOrigin::Ctl);
        // Deleting the replacement hides the base route too.
        s.del(p("10.0.0.0/8")).unwrap();
        assert!(
            s.effective()
                .iter()
                .all(|(r, _)| r.prefix != p("10.0.0.0/8"))
        );
        assert_eq!(
            s.del(p("10.0.0.0/8")).unwrap_err(),
            RouteChangeError::Missing(p("10.0.0.0/8"))
        );
        s.del(p("2001:db8::/32")).unwrap();
        assert_eq!(s.specs().len(), 1);
        assert_eq!(s.changes(), 3);
        // Re-adding a deleted base prefix works without replace.
        s.add(p("2001:db8::/32"), vec!["a".into()], false).unwrap();
        assert_eq!(s.specs().len(), 2);
    }

    #[test]
    fn reload_keeps_changes() {
        let mut s = set();
        s.add(p("192.0.2.0/24"), vec!["a".into()], false).unwrap();
        s.del(p("10.0.0.0/8")).unwrap();
        let mut fresh = set();
        fresh.base.pop();
        let r = fresh.with_changes_of(&s);
        let specs = r.specs();
        assert_eq!(specs.len(), 1, "{specs:?}");
        assert_eq!(specs[0].prefix, p("192.0.2.0/24"));
    }
}
