//! Model spec validation and the tract-onnx runner (cold: the `tpe` thread).
//!
//! A model is a pair `models/NAME.onnx` + `models/NAME.json` (the spec). Loading checks, in
//! order, and refuses with a [`ModelError`] naming the file and what mismatched:
//! 1. the spec parses and describes what this build computes: feature names and order
//!    ([`features::feature_names`]), window, horizons `[5, 15, 60]`, normalisation method,
//!    layout `batch_features`;
//! 2. the `.onnx` file's sha256 equals the spec's `sha256`;
//! 3. the file decodes as ONNX, with one float input `[batch, n_features]` (batch symbolic
//!    or equal to the spec's `n_dest`) and one float output `[batch, n_horizons]`;
//! 4. tract builds a plan with the batch fixed by `with_input_fact` to the spec's
//!    `n_dest`, and the optimised plan's output shape is `[n_dest, n_horizons]`.
//!
//! At run time destinations are processed in chunks of the spec's batch (the last chunk
//! zero-padded). An output with a NaN or an infinity rejects that inference (counted;
//! the caller uses a baseline for it). Inference time goes into an HDR histogram (µs).
//!
//! The default model is also compiled into the binary ([`ModelRunner::embedded`]) so
//! `steerd` works from any directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

use super::features::{self, N_FEATURES, NORMALIZATION, WINDOW};

/// Where the default model lives relative to the working directory.
pub const DEFAULT_MODEL_PATH: &str = "models/tpe-default.onnx";
const EMBEDDED_ONNX: &[u8] = include_bytes!("../../models/tpe-default.onnx");
const EMBEDDED_SPEC: &[u8] = include_bytes!("../../models/tpe-default.json");
/// Layout name: row = destination, column = feature.
pub const LAYOUT: &str = "batch_features";

/// Why a model was refused or an inference rejected.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read.
    #[error("model file {path}: cannot read: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The spec beside a model file could not be read.
    #[error("model spec {path} (the .json beside the model): cannot read: {source}")]
    ReadSpec {
        /// Spec file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The spec is not valid JSON or does not describe what this build computes.
    #[error("model spec {path}: {msg}")]
    Spec {
        /// Spec file.
        path: String,
        /// What mismatched.
        msg: String,
    },
    /// The model file's hash differs from the spec's.
    #[error("model {path}: sha256 {actual} does not match {expected} in its spec; refusing it")]
    Hash {
        /// Model file.
        path: String,
        /// Hash in the spec.
        expected: String,
        /// Hash of the file.
        actual: String,
    },
    /// The file is not a usable ONNX model.
    #[error("model {path}: corrupt or unsupported ONNX: {msg}")]
    Corrupt {
        /// Model file.
        path: String,
        /// Decoder's message.
        msg: String,
    },
    /// Input or output shapes do not match the spec.
    #[error("model {path}: shape mismatch with its spec: {msg}")]
    Shape {
        /// Model file.
        path: String,
        /// What mismatched.
        msg: String,
    },
    /// tract failed while running the model.
    #[error("model {name}: inference failed: {msg}")]
    Inference {
        /// Model label.
        name: String,
        /// tract's message.
        msg: String,
    },
    /// The output contained NaN or infinite values.
    #[error("model {name}: {count} NaN/inf output values; inference rejected")]
    NonFinite {
        /// Model label.
        name: String,
        /// How many values were not finite.
        count: usize,
    },
}

/// `inputs` of a spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecInputs {
    /// Past buckets in the window.
    pub window: usize,
    /// Feature names, in input order.
    pub features: Vec<String>,
    /// Batch size the model is run with (destinations per inference).
    pub n_dest: usize,
    /// Input layout (`batch_features`).
    pub layout: String,
}

/// `normalization` of a spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecNormalization {
    /// Method name ([`NORMALIZATION`]).
    pub method: String,
    /// Clip applied to normalised values and outputs.
    pub clip: f32,
}

/// The JSON spec beside a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// Input description.
    pub inputs: SpecInputs,
    /// Normalisation.
    pub normalization: SpecNormalization,
    /// Horizons in buckets.
    pub horizons: Vec<usize>,
    /// Hex sha256 of the .onnx file.
    pub sha256: String,
    /// Free-form training metadata.
    #[serde(default)]
    pub training: serde_json::Value,
}

impl ModelSpec {
    /// Checks that the spec describes what this build computes.
    pub fn validate(&self, path: &str) -> Result<(), ModelError> {
        let bad = |msg: String| {
            Err(ModelError::Spec {
                path: path.to_string(),
                msg,
            })
        };
        if self.inputs.window != WINDOW {
            return bad(format!(
                "window {} but this build computes {}",
                self.inputs.window, WINDOW
            ));
        }
        let want = features::feature_names();
        if self.inputs.features != want {
            let first = self
                .inputs
                .features
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b);
            return bad(match first {
                Some(i) => format!(
                    "feature {i} is {:?} but this build computes {:?}",
                    self.inputs.features[i], want[i]
                ),
                None => format!(
                    "{} features but this build computes {}",
                    self.inputs.features.len(),
                    want.len()
                ),
            });
        }
        if self.horizons != features::HORIZONS {
            return bad(format!(
                "horizons {:?} but this build predicts {:?}",
                self.horizons,
                features::HORIZONS
            ));
        }
        if self.normalization.method != NORMALIZATION {
            return bad(format!(
                "normalization {:?} but this build implements {:?}",
                self.normalization.method, NORMALIZATION
            ));
        }
        if self.inputs.layout != LAYOUT {
            return bad(format!(
                "layout {:?} but this build uses {:?}",
                self.inputs.layout, LAYOUT
            ));
        }
        if self.inputs.n_dest == 0 || self.inputs.n_dest > 65_536 {
            return bad(format!(
                "batch n_dest {} out of range 1..=65536",
                self.inputs.n_dest
            ));
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad(format!("sha256 {:?} is not 64 hex digits", self.sha256));
        }
        Ok(())
    }
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Something that maps a batch of feature rows to normalised outputs (the ONNX runner,
/// or a stand-in in tests).
pub trait BatchModel: Send {
    /// Label for logs.
    fn name(&self) -> &str;
    /// Runs rows `x[i*N_FEATURES..(i+1)*N_FEATURES]` for `i in 0..out.len()`, writing the
    /// normalised outputs. On error nothing in `out` may be used.
    fn infer(&mut self, x: &[f32], out: &mut [[f32; 3]]) -> Result<(), ModelError>;
}

type Plan = Arc<TypedRunnableModel>;

/// A validated ONNX model ready to run.
#[derive(Clone)]
pub struct ModelRunner {
    spec: ModelSpec,
    label: String,
    plan: Plan,
    batch: usize,
    /// Inference times, µs (one per chunk of `batch` destinations).
    pub timings: Histogram<u64>,
    /// Inferences run (chunks).
    pub inferences: u64,
    /// Inferences that failed in tract.
    pub failures: u64,
    /// Inferences rejected for NaN/inf outputs.
    pub rejected_nonfinite: u64,
}

fn dims(vi: &tract_onnx::pb::ValueInfoProto) -> Option<(i32, Vec<Option<i64>>)> {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    use tract_onnx::pb::type_proto::Value as T;
    let T::TensorType(t) = vi.r#type.as_ref()?.value.as_ref()?;
    let shape = t.shape.as_ref()?;
    let d = shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(Value::DimValue(v)) => Some(*v),
            _ => None,
        })
        .collect();
    Some((t.elem_type, d))
}

impl ModelRunner {
    /// Loads `path` (`.onnx`) and the spec beside it (same name, `.json`).
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let spec_path = path.with_extension("json");
        let onnx = std::fs::read(path).map_err(|source| ModelError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let spec = std::fs::read(&spec_path).map_err(|source| ModelError::ReadSpec {
            path: spec_path.display().to_string(),
            source,
        })?;
        Self::from_bytes(
            &path.display().to_string(),
            &spec_path.display().to_string(),
            &onnx,
            &spec,
        )
    }

    /// The default model compiled into the binary.
    pub fn embedded() -> Result<Self, ModelError> {
        Self::from_bytes(
            "embedded:tpe-default.onnx",
            "embedded:tpe-default.json",
            EMBEDDED_ONNX,
            EMBEDDED_SPEC,
        )
    }

    /// Loads `path`; when it does not exist and is the default path, the embedded model.
    pub fn load_or_embedded(path: &Path) -> Result<Self, ModelError> {
        if !path.exists() && path == Path::new(DEFAULT_MODEL_PATH) {
            return Self::embedded();
        }
        Self::load(path)
    }

    /// Validates and builds a model from bytes. `label`/`spec_label` name them in errors.
    pub fn from_bytes(
        label: &str,
        spec_label: &str,
        onnx: &[u8],
        spec_json: &[u8],
    ) -> Result<Self, ModelError> {
        let spec: ModelSpec = serde_json::from_slice(spec_json).map_err(|e| ModelError::Spec {
            path: spec_label.to_string(),
            msg: format!("not a valid spec: {e}"),
        })?;
        spec.validate(spec_label)?;
        let actual = sha256_hex(onnx);
        if !actual.eq_ignore_ascii_case(&spec.sha256) {
            return Err(ModelError::Hash {
                path: label.to_string(),
                expected: spec.sha256.clone(),
                actual,
            });
        }
        let corrupt = |e: &dyn std::fmt::Display| ModelError::Corrupt {
            path: label.to_string(),
            msg: format!("{e:#}"),
        };
        let shape = |msg: String| ModelError::Shape {
            path: label.to_string(),
            msg,
        };
        // tract parses untrusted bytes: a panic in it refuses the model instead of
        // ending the process (see crate::panics).
        let batch = spec.inputs.n_dest;
        let built = crate::panics::contain(|| -> Result<_, ModelError> {
            let framework = tract_onnx::onnx();
            let proto = framework
                .proto_model_for_read(&mut &onnx[..])
                .map_err(|e| corrupt(&e))?;
            let graph = proto.graph.as_ref().ok_or_else(|| corrupt(&"no graph"))?;
            let inits: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
            let inputs: Vec<_> = graph
                .input
                .iter()
                .filter(|i| !inits.contains(&i.name.as_str()))
                .collect();
            let n_out = spec.horizons.len();
            if inputs.len() != 1 || graph.output.len() != 1 {
                return Err(shape(format!(
                    "{} inputs and {} outputs, the spec needs 1 and 1",
                    inputs.len(),
                    graph.output.len()
                )));
            }
            let (ety, din) =
                dims(inputs[0]).ok_or_else(|| shape("input has no tensor shape".into()))?;
            if ety != 1
                || din.len() != 2
                || din[1] != Some(N_FEATURES as i64)
                || din[0].is_some_and(|b| b != batch as i64)
            {
                return Err(shape(format!(
                    "input {:?} is {} of shape {:?}; the spec needs float [{batch} or symbolic, {N_FEATURES}]",
                    inputs[0].name,
                    if ety == 1 { "float" } else { "not float" },
                    din
                )));
            }
            let (ety, dout) =
                dims(&graph.output[0]).ok_or_else(|| shape("output has no tensor shape".into()))?;
            if ety != 1 || dout.len() != 2 || dout[1] != Some(n_out as i64) {
                return Err(shape(format!(
                    "output {:?} has shape {:?}; the spec needs float [batch, {n_out}]",
                    graph.output[0].name, dout
                )));
            }
            let model = framework
                .model_for_proto_model(&proto)
                .map_err(|e| corrupt(&e))?
                .with_input_fact(0, f32::fact([batch, N_FEATURES]).into())
                .map_err(|e| shape(format!("{e:#}")))?
                .into_optimized()
                .map_err(|e| {
                    shape(format!(
                        "cannot build a plan for input [{batch}, {N_FEATURES}]: {e:#}"
                    ))
                })?;
            let of = model.output_fact(0).map_err(|e| shape(format!("{e:#}")))?;
            if of.shape.as_concrete() != Some(&[batch, n_out][..]) {
                return Err(shape(format!(
                    "output shape is {:?}, the spec needs [{batch}, {n_out}]",
                    of.shape
                )));
            }
            let plan = model.into_runnable().map_err(|e| corrupt(&e))?;
            Ok(plan)
        });
        let plan =
            built.map_err(|msg| corrupt(&format!("the model builder panicked: {msg}")))??;
        Ok(ModelRunner {
            spec,
            label: label.to_string(),
            plan,
            batch,
            timings: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            inferences: 0,
            failures: 0,
            rejected_nonfinite: 0,
        })
    }

    /// The validated spec.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Path or label of the model.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Batch size of one inference.
    pub fn batch(&self) -> usize {
        self.batch
    }

    fn run_chunk(
        &mut self,
        x: &[f32],
        rows: usize,
        out: &mut [[f32; 3]],
    ) -> Result<(), ModelError> {
        let fail = |e: &dyn std::fmt::Display, name: &str| ModelError::Inference {
            name: name.to_string(),
            msg: format!("{e:#}"),
        };
        let mut buf = vec![0.0f32; self.batch * N_FEATURES];
        buf[..rows * N_FEATURES].copy_from_slice(&x[..rows * N_FEATURES]);
        let t0 = Instant::now();
        let input = Tensor::from_shape(&[self.batch, N_FEATURES], &buf)
            .map_err(|e| fail(&e, &self.label))?;
        self.inferences += 1;
        let res = self.plan.run(tvec!(input.into_tvalue()));
        let res = match res {
            Ok(r) => r,
            Err(e) => {
                self.failures += 1;
                return Err(fail(&e, &self.label));
            }
        };
        let view = res[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| fail(&e, &self.label))?;
        let _ = self
            .timings
            .record((t0.elapsed().as_micros() as u64).max(1));
        let flat: Vec<f32> = view.iter().copied().collect();
        let bad = flat[..rows * 3].iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            self.rejected_nonfinite += 1;
            return Err(ModelError::NonFinite {
                name: self.label.clone(),
                count: bad,
            });
        }
        for (r, o) in out.iter_mut().enumerate().take(rows) {
            o.copy_from_slice(&flat[r * 3..r * 3 + 3]);
        }
        Ok(())
    }
}

impl BatchModel for ModelRunner {
    fn name(&self) -> &str {
        &self.label
    }
    fn infer(&mut self, x: &[f32], out: &mut [[f32; 3]]) -> Result<(), ModelError> {
        let n = out.len();
        assert!(
            x.len() >= n * N_FEATURES,
            "feature buffer shorter than the output"
        );
        let mut start = 0;
        while start < n {
            let rows = (n - start).min(self.batch);
            let (xs, os) = (&x[start * N_FEATURES..], &mut out[start..start + rows]);
            self.run_chunk(xs, rows, os)?;
            start += rows;
        }
        Ok(())
    }
}

/// Resolves a `--model` argument: the default path falls back to the embedded model.
pub fn resolve(path: Option<&Path>) -> Result<ModelRunner, ModelError> {
    let p: PathBuf = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_PATH));
    ModelRunner::load_or_embedded(&p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ModelSpec {
        serde_json::from_slice(EMBEDDED_SPEC).unwrap()
    }

    #[test]
    fn embedded_model_loads_and_runs() {
        let mut m = ModelRunner::embedded().unwrap();
        assert_eq!(m.spec().horizons, vec![5, 15, 60]);
        // 70 rows: two chunks of 64, the second padded.
        let x = vec![0.0f32; 70 * N_FEATURES];
        let mut out = vec![[f32::NAN; 3]; 70];
        m.infer(&x, &mut out).unwrap();
        assert!(out.iter().flatten().all(|v| v.is_finite()));
        assert_eq!(m.inferences, 2);
        assert_eq!(out[0], out[69]); // same input, same output
    }

    #[test]
    fn spec_mismatches_are_named() {
        let mut s = spec();
        s.inputs.window = 7;
        assert!(
            s.validate("x.json")
                .unwrap_err()
                .to_string()
                .contains("window 7")
        );
        let mut s = spec();
        s.inputs.features.swap(0, 1);
        let e = s.validate("x.json").unwrap_err().to_string();
        assert!(e.contains("x.json") && e.contains("feature 0"), "{e}");
        let mut s = spec();
        s.horizons = vec![5, 15];
        assert!(
            s.validate("x.json")
                .unwrap_err()
                .to_string()
                .contains("horizons")
        );
        let mut s = spec();
        s.normalization.method = "zscore".into();
        assert!(
            s.validate("x.json")
                .unwrap_err()
                .to_string()
                .contains("normalization")
        );
        let mut s = spec();
        s.sha256 = "abc".into();
        assert!(
            s.validate("x.json")
                .unwrap_err()
                .to_string()
                .contains("sha256")
        );
    }

    #[test]
    fn hash_mismatch_is_refused() {
        let mut s = spec();
        s.sha256 = "0".repeat(64);
        let js = serde_json::to_vec(&s).unwrap();
        let e = ModelRunner::from_bytes("m.onnx", "m.json", EMBEDDED_ONNX, &js)
            .err()
            .unwrap();
        assert!(matches!(e, ModelError::Hash { .. }), "{e}");
        assert!(e.to_string().contains("m.onnx") && e.to_string().contains("does not match"));
    }

    #[test]
    fn corrupt_file_is_refused() {
        let garbage: Vec<u8> = (0..4000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut s = spec();
        s.sha256 = sha256_hex(&garbage);
        let js = serde_json::to_vec(&s).unwrap();
        let e = ModelRunner::from_bytes("bad.onnx", "bad.json", &garbage, &js)
            .err()
            .unwrap();
        assert!(matches!(e, ModelError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("bad.onnx"));
        // Truncated real model.
        let cut = &EMBEDDED_ONNX[..EMBEDDED_ONNX.len() / 2];
        s.sha256 = sha256_hex(cut);
        let js = serde_json::to_vec(&s).unwrap();
        assert!(ModelRunner::from_bytes("cut.onnx", "cut.json", cut, &js).is_err());
    }

    #[test]
    fn unparsable_spec_is_refused() {
        let e = ModelRunner::from_bytes("m.onnx", "m.json", EMBEDDED_ONNX, b"{not json")
            .err()
            .unwrap();
        assert!(e.to_string().contains("m.json"), "{e}");
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let e = ModelRunner::load(Path::new("/nonexistent/x.onnx"))
            .err()
            .unwrap();
        assert!(matches!(e, ModelError::Read { .. }));
        assert!(resolve(None).is_ok() || Path::new(DEFAULT_MODEL_PATH).exists());
        // A model file without its spec says which file is missing and where it belongs.
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m.onnx");
        std::fs::write(&m, b"onnx bytes").unwrap();
        let e = ModelRunner::load(&m).err().unwrap().to_string();
        assert!(
            e.starts_with(&format!(
                "model spec {} (the .json beside the model): cannot read",
                dir.path().join("m.json").display()
            )),
            "{e}"
        );
    }

    fn test_model(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    #[test]
    fn wrong_shape_model_is_refused() {
        let e = ModelRunner::load(&test_model("tpe-wrong-shape.onnx"))
            .err()
            .unwrap();
        assert!(matches!(e, ModelError::Shape { .. }), "{e}");
        assert!(e.to_string().contains("tpe-wrong-shape.onnx"), "{e}");
    }

    #[test]
    fn nan_model_output_is_rejected_and_counted() {
        let mut m = ModelRunner::load(&test_model("tpe-nan.onnx")).unwrap();
        let x = vec![0.5f32; 3 * N_FEATURES];
        let mut out = vec![[0.0; 3]; 3];
        let e = m.infer(&x, &mut out).unwrap_err();
        assert!(matches!(e, ModelError::NonFinite { .. }), "{e}");
        assert_eq!(m.rejected_nonfinite, 1);
    }
}
