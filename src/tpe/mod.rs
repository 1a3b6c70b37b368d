//! TPE, the Traffic Prediction Engine: forecasts per-destination traffic 5 min, 15 min and
//! 1 h ahead so that the RAM can place resources before the traffic arrives.
//!
//! Cold: everything here runs on the `tpe` thread(s) or in the CLI, never on the fast
//! path. Workers only bump their [`crate::telemetry::DestCounters`]; the engine reads
//! them, and publishes [`Predictions`] through an `ArcSwap` that the `ram` thread loads.
//!
//! | file | owns |
//! | --- | --- |
//! | [`scenario`] | deterministic traffic scenarios and the event calendar |
//! | [`baseline`] | last value, seasonal naive, EWMA, Holt–Winters |
//! | [`features`] | the model's input features (the only implementation; train.py uses it) |
//! | [`model`] | model spec (JSON) validation and the tract-onnx runner |
//! | [`learn`] | online correction and shadow evaluation of a candidate model |
//! | [`engine`] | the `tpe` thread(s): aggregate → predict → publish; commands; sharding |
//! | [`live`] | the engine inside `steerd run`: `[tpe]` config, status, metrics, screen, `model load` |
//! | [`eval`] | MAE/RMSE/MAPE per horizon and predictor, JSON and SVG plot |
//! | [`cli`] | `steerd tpe eval`, `steerd tpe dataset`, `steerd telemetry export` |
//!
//! Invariants: a model is only run after its spec, hash and shapes were checked; a model
//! failure (error, NaN/inf output, panic) costs that prediction, which a baseline replaces,
//! and never stops the engine or forwarding.

pub mod baseline;
pub mod cli;
pub mod engine;
pub mod eval;
pub mod features;
pub mod learn;
pub mod live;
pub mod model;
pub mod scenario;

use serde::{Deserialize, Serialize};

/// Which forecaster produced a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictorKind {
    /// The ONNX model (with online correction when enabled).
    Model,
    /// Last observed value.
    LastValue,
    /// Same bucket one day earlier.
    SeasonalNaive,
    /// Exponentially weighted moving average.
    Ewma,
    /// Additive Holt–Winters with a daily season.
    HoltWinters,
    /// Different sources for different destinations (see `per_dest_source`).
    Mixed,
}

impl PredictorKind {
    /// The baselines, in the order [`baseline::all_baselines`] builds them.
    pub const BASELINES: [PredictorKind; 4] = [
        PredictorKind::LastValue,
        PredictorKind::SeasonalNaive,
        PredictorKind::Ewma,
        PredictorKind::HoltWinters,
    ];

    /// Name used in JSON and logs.
    pub fn name(self) -> &'static str {
        match self {
            PredictorKind::Model => "model",
            PredictorKind::LastValue => "last_value",
            PredictorKind::SeasonalNaive => "seasonal_naive",
            PredictorKind::Ewma => "ewma",
            PredictorKind::HoltWinters => "holt_winters",
            PredictorKind::Mixed => "mixed",
        }
    }
}

/// A forecast horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Horizon {
    /// Buckets ahead of the last observed bucket.
    pub buckets: u32,
    /// Label, e.g. "5m".
    pub label: &'static str,
}

/// The three horizons: 5 min, 15 min, 1 h (in buckets of one logical minute).
pub const HORIZONS: [Horizon; 3] = [
    Horizon {
        buckets: 5,
        label: "5m",
    },
    Horizon {
        buckets: 15,
        label: "15m",
    },
    Horizon {
        buckets: 60,
        label: "1h",
    },
];

/// What the TPE publishes after every bucket (read by the RAM through `ArcSwap`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Predictions {
    /// Increases by one with every publication.
    pub epoch: u64,
    /// Last bucket observed when predicting.
    pub bucket_index: u64,
    /// The horizons, in the order of the inner arrays of `per_dest`.
    pub horizons: [Horizon; 3],
    /// Predicted packets per bucket for each destination at each horizon.
    pub per_dest: Vec<[f32; 3]>,
    /// The forecaster used (`Mixed` when shards used different ones).
    pub source: PredictorKind,
    /// The forecaster used for each destination.
    pub per_dest_source: Vec<PredictorKind>,
}

impl Predictions {
    /// Empty predictions (before the first bucket).
    pub fn empty(n_dest: usize) -> Self {
        Predictions {
            epoch: 0,
            bucket_index: 0,
            horizons: HORIZONS,
            per_dest: vec![[0.0; 3]; n_dest],
            source: PredictorKind::LastValue,
            per_dest_source: vec![PredictorKind::LastValue; n_dest],
        }
    }
}

/// Errors of the TPE (all cold).
#[derive(Debug, thiserror::Error)]
pub enum TpeError {
    /// The model or its spec was refused.
    #[error(transparent)]
    Model(#[from] model::ModelError),
    /// Telemetry could not be read or written.
    #[error(transparent)]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Bad arguments or configuration.
    #[error("{0}")]
    Config(String),
    /// The engine thread is gone or did not answer.
    #[error("tpe engine: {0}")]
    Engine(String),
}

impl TpeError {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        TpeError::Io {
            path: path.to_string(),
            source,
        }
    }
}
