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
