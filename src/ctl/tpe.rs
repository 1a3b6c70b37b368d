//! The control plane's view of the traffic prediction engine (cold).
//!
//! The engine itself lives in [`crate::tpe`] (behind the `tpe` feature); `steerd run`
//! starts it and hands the `ctl` thread and the controller a [`TpeLink`]. Every method
//! reads what the engine published last (`ArcSwap` loads, no wait on the engine thread)
//! except [`TpeLink::load_model`], which asks the engine thread and waits for its answer.

use std::path::Path;

use serde_json::Value;

use super::proto::OpError;

/// What the `ctl` thread, the controller and the summary need from a running TPE.
pub trait TpeLink: Send + Sync {
    /// The `tpe` object of `/status`, `ctl status` and the final `--json`.
    fn status(&self) -> Value;
    /// One short line: model, last prediction for the top destinations, MAE vs the best
    /// baseline (the plain stats line).
    fn line(&self) -> String;
    /// A few lines for the live screen's prediction section.
    fn screen_lines(&self) -> Vec<String>;
    /// Validates the model at `path` and starts it in shadow beside the active one; a
    /// model that fails validation is refused and the active one keeps running.
    fn load_model(&self, path: &Path) -> Result<Value, OpError>;
    /// Schedules an event (`events.add`): validated like `[[tpe.events]]`, refused with
    /// the field named; the model and a live RAM see it from the next bucket.
    fn add_event(&self, e: &EventRequest) -> Result<Value, OpError>;
    /// Removes a scheduled event by name or index (`events.del`).
    fn remove_event(&self, key: &str) -> Result<Value, OpError>;
    /// The scheduled events with their state (`events.list`).
    fn events(&self) -> Value;
}

/// An event to schedule at run time (`steerd ctl events add`): like `[[tpe.events]]`,
/// except that a relative start counts from now (`start_in_min`), not from the
/// engine's first bucket.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    /// Start time, RFC 3339.
    #[serde(default)]
    pub start: Option<String>,
    /// Start as logical minutes from now (0 = the current bucket).
    #[serde(default)]
    pub start_in_min: Option<u64>,
    /// Length in minutes (buckets).
    pub duration_min: u32,
    /// Telemetry destination ids affected.
    pub destinations: Vec<u16>,
    /// Expected traffic multiplier while it runs.
    pub factor: f32,
    /// Name (unique among the scheduled events).
    #[serde(default)]
    pub name: Option<String>,
}

/// The `tpe` entry of `/status` when no engine runs: why not.
pub fn absent_status(enabled_in_config: bool) -> Value {
    if cfg!(feature = "tpe") {
        if enabled_in_config {
            serde_json::json!({"state": "not running"})
        } else {
            serde_json::json!({"state": "off", "note": "enable it with [tpe] enabled = true"})
        }
    } else {
        Value::String("not available in this build".into())
    }
}
