//! The `steerd ctl` protocol: line-delimited JSON over a Unix stream socket
//! (documented in docs/ctl.md).
//!
//! Each request is one JSON object on one line, `{"cmd": NAME, ...arguments, "id": ANY}`
//! (`id` optional, echoed back); each response is one JSON object on one line:
//! `{"ok": true, "result": {...}}` or `{"ok": false, "error": {"code", "message", ...}}`.
//! Several requests may be sent on one connection; responses come in order.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Every command name, as written in `cmd`.
pub const COMMANDS: &[&str] = &[
    "status",
    "routes.list",
    "routes.add",
    "routes.del",
    "keys.rotate",
    "model.load",
    "events.list",
    "events.add",
    "events.del",
    "ram.links",
    "ram.link",
    "reload",
    "drain",
    "shutdown",
];

/// A request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", deny_unknown_fields)]
pub enum Request {
    /// Run state, counters, tables, latency.
    #[serde(rename = "status")]
    Status,
    /// Routes in force, with their origin.
    #[serde(rename = "routes.list")]
    RoutesList,
    /// Adds a route (`replace`: replace an existing route for the prefix).
    #[serde(rename = "routes.add")]
    RoutesAdd {
        /// CIDR prefix.
        prefix: String,
        /// Next-hop names (several = ECMP).
        via: Vec<String>,
        /// Replace an existing route for the prefix.
        #[serde(default)]
        replace: bool,
    },
    /// Deletes the route for a prefix.
    #[serde(rename = "routes.del")]
    RoutesDel {
        /// CIDR prefix.
        prefix: String,
    },
    /// Rotates the steering key: the current key becomes the previous one.
    #[serde(rename = "keys.rotate")]
    KeysRotate {
        /// The new key (32 hex digits); a random one when absent.
        #[serde(default)]
        key: Option<String>,
    },
    /// Loads a prediction model (needs the TPE).
    #[serde(rename = "model.load")]
    ModelLoad {
        /// Path of the .onnx file.
        path: String,
    },
    /// The TPE's scheduled events (needs the TPE).
    #[serde(rename = "events.list")]
    EventsList,
    /// Schedules an event at run time (needs the TPE); like `[[tpe.events]]`, with a
    /// relative start counted from now.
    #[serde(rename = "events.add")]
    EventsAdd(super::tpe::EventRequest),
    /// Removes a scheduled event by name or index (needs the TPE).
    #[serde(rename = "events.del")]
    EventsDel {
        /// Name or index.
        event: String,
    },
    /// The live RAM's links (state, placed load) and the steered destinations' paths.
    #[serde(rename = "ram.links")]
    RamLinks,
    /// Sets a link of the live RAM's topology down or up: by its two ends (`a`, `b`,
    /// either order) or by `index` in `[[ram.links]]`. No path uses a link that is
    /// down; the RAM re-places and publishes at once.
    #[serde(rename = "ram.link")]
    RamLink {
        /// One end (node name).
        #[serde(default)]
        a: Option<String>,
        /// The other end.
        #[serde(default)]
        b: Option<String>,
        /// Or the link's index.
        #[serde(default)]
        index: Option<usize>,
        /// `down` or `up`.
        state: String,
    },
    /// Reloads the configuration (the running file, or `config`).
    #[serde(rename = "reload")]
    Reload {
        /// Another config file to load instead.
        #[serde(default)]
        config: Option<String>,
    },
    /// Stops receiving, drains, answers with the final stats; the process then exits.
    #[serde(rename = "drain")]
    Drain,
    /// Like drain, but answers at once.
    #[serde(rename = "shutdown")]
    Shutdown,
}

/// A failed request.
#[derive(Debug, Clone, PartialEq)]
pub struct OpError {
    /// Stable machine-readable code (see docs/ctl.md).
    pub code: &'static str,
    /// What happened, for people.
    pub message: String,
    /// More fields for the error object (e.g. `field`, `line`, `fields`).
    pub extra: Map<String, Value>,
}

impl OpError {
    /// An error without extra fields.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        OpError {
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// Adds a field to the error object.
    pub fn with(mut self, k: &str, v: Value) -> Self {
        self.extra.insert(k.to_string(), v);
        self
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Parses one request line. Returns the request (or why not) and the `id` to echo.
pub fn parse_line(line: &str) -> (Result<Request, OpError>, Option<Value>) {
    let mut v: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            return (
                Err(OpError::new(
                    "bad_request",
                    format!("not a JSON object: {e}"),
                )),
                None,
            );
        }
    };
    let Some(obj) = v.as_object_mut() else {
        return (
            Err(OpError::new("bad_request", "a request is a JSON object")),
            None,
        );
    };
    let id = obj.remove("id");
    let cmd = match obj.get("cmd") {
        Some(Value::String(c)) => c.clone(),
        _ => {
            return (
                Err(OpError::new(
                    "bad_request",
                    format!("missing \"cmd\"; commands: {}", COMMANDS.join(", ")),
                )),
                id,
            );
        }
    };
    if !COMMANDS.contains(&cmd.as_str()) {
        return (
            Err(OpError::new(
                "unknown_command",
                format!(
                    "unknown command \"{cmd}\"; commands: {}",
                    COMMANDS.join(", ")
                ),
            )),
            id,
        );
    }
    let r = serde_json::from_value::<Request>(v)
        .map_err(|e| OpError::new("bad_request", format!("{cmd}: {e}")));
    (r, id)
}

/// The response line (without the newline) for a result.
pub fn response(r: Result<Value, OpError>, id: Option<Value>) -> String {
    let mut v = match r {
        Ok(result) => json!({"ok": true, "result": result}),
        Err(e) => {
            let mut err = Map::new();
            err.insert("code".into(), json!(e.code));
            err.insert("message".into(), json!(e.message));
            err.extend(e.extra);
            json!({"ok": false, "error": err})
        }
    };
    if let Some(id) = id {
        v["id"] = id;
    }
    serde_json::to_string(&v).expect("JSON of plain values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_reports_errors() {
        let (r, id) =
            parse_line(r#"{"cmd":"routes.add","prefix":"10.0.0.0/8","via":["a"],"id":7}"#);
        assert_eq!(
            r.unwrap(),
            Request::RoutesAdd {
                prefix: "10.0.0.0/8".into(),
                via: vec!["a".into()],
                replace: false
            }
        );
        assert_eq!(id, Some(json!(7)));
        assert_eq!(
            parse_line(r#"{"cmd":"status"}"#).0.unwrap(),
            Request::Status
        );
        let e = parse_line(r#"{"cmd":"fly"}"#).0.unwrap_err();
        assert_eq!(e.code, "unknown_command");
        assert!(e.message.contains("routes.add"));
        let e = parse_line(r#"{"cmd":"routes.del"}"#).0.unwrap_err();
        assert_eq!(e.code, "bad_request");
        assert!(e.message.contains("prefix"), "{e}");
        assert_eq!(parse_line("nope").0.unwrap_err().code, "bad_request");
        assert_eq!(parse_line("[1]").0.unwrap_err().code, "bad_request");
        // Every command name parses (with its arguments).
        for c in COMMANDS {
            let line = json!({"cmd": c, "prefix": "10.0.0.0/8", "via": ["a"], "path": "m"});
            let (r, _) = parse_line(&line.to_string());
            if let Err(e) = r {
                assert_eq!(e.code, "bad_request", "{c}: {e}");
            }
        }
    }

    #[test]
    fn events_add_parses_with_optional_fields_and_refuses_unknown_ones() {
        let (r, id) = parse_line(
            r#"{"cmd":"events.add","start_in_min":3,"duration_min":5,"destinations":[1,2],"factor":2.5,"id":1}"#,
        );
        assert_eq!(id, Some(json!(1)));
        assert_eq!(
            r.unwrap(),
            Request::EventsAdd(crate::ctl::tpe::EventRequest {
                start: None,
                start_in_min: Some(3),
                duration_min: 5,
                destinations: vec![1, 2],
                factor: 2.5,
                name: None,
            })
        );
        let (r, _) = parse_line(
            r#"{"cmd":"events.add","duration_min":5,"destinations":[1],"factor":2,"bogus":1}"#,
        );
        let e = r.unwrap_err();
        assert_eq!(e.code, "bad_request");
        assert!(e.message.contains("bogus"), "{e}");
        let (r, _) = parse_line(r#"{"cmd":"ram.link","a":"edge","b":"core-a","state":"down"}"#);
        assert_eq!(
            r.unwrap(),
            Request::RamLink {
                a: Some("edge".into()),
                b: Some("core-a".into()),
                index: None,
                state: "down".into()
            }
        );
        let (r, _) = parse_line(r#"{"cmd":"ram.link","index":2}"#);
        assert!(r.unwrap_err().message.contains("state"));
        let (r, _) = parse_line(r#"{"cmd":"ram.links"}"#);
        assert_eq!(r.unwrap(), Request::RamLinks);
        let (r, _) = parse_line(r#"{"cmd":"events.del","event":"launch"}"#);
        assert_eq!(
            r.unwrap(),
            Request::EventsDel {
                event: "launch".into()
            }
        );
    }

    #[test]
    fn responses() {
        let ok = response(Ok(json!({"a": 1})), Some(json!("x")));
        assert_eq!(ok, r#"{"id":"x","ok":true,"result":{"a":1}}"#);
        let e = response(
            Err(OpError::new("config", "bad").with("field", json!("ports[0].mtu"))),
            None,
        );
        let v: Value = serde_json::from_str(&e).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["field"], "ports[0].mtu");
    }
}
