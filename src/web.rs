//! The browser build's JavaScript API (wasm32 only), used by the demo page in `examples/web/`.
//!
//! One [`WebKiln`] holds a WebGPU context, the seed CNN that classifies drawings (weights from a
//! checkpoint written by `kiln train`), a second seed CNN that trains in the page, and a
//! conformance suite for the kernel self-check. Every method that reads the GPU returns a
//! promise: nothing blocks the page's only thread.
//!
//! Calls that touch the same model must not overlap (the page awaits each before the next);
//! an overlapping call fails with "busy" instead of corrupting state.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::conformance::{run_case_async, Suite};
use crate::data::procedural_digits;
use crate::nn::model::Samples;
use crate::nn::{checkpoint, zoo, Sequential};
use crate::{autograd, Context, ContextOptions, Tensor};

/// Side of the digit images the seed CNN takes.
const SIDE: usize = crate::data::digits::SIZE;

/// A kiln error for JavaScript, with its causes ([`crate::Error::report`]).
fn js_err(e: crate::Error) -> JsError {
    JsError::new(&e.report())
}

fn js(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn busy() -> JsError {
    JsError::new("busy: another call on this model has not finished")
}

/// Routes Rust panics to the browser console (once), so a bug shows its message.
fn hook_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            web_sys::console::error_1(&JsValue::from_str(&format!("kiln panicked: {info}")));
        }));
    });
}

/// The state the page's calls share.
struct State {
    /// Classifies drawings; loaded from a checkpoint.
    classifier: Sequential,
    /// Trains in the page (fresh weights).
    trainee: Option<Sequential>,
    /// Training digits and labels for the trainee.
    train_data: Option<(Samples, Samples)>,
    /// Position in the training data.
    cursor: usize,
}

/// kiln in a web page: a WebGPU context and the demo's models.
#[wasm_bindgen]
pub struct WebKiln {
    ctx: Context,
    state: Rc<RefCell<State>>,
    suite: Option<Rc<Suite>>,
}

#[wasm_bindgen]
impl WebKiln {
    /// Opens the browser's WebGPU adapter (fails with the reason when there is none) and
    /// builds an untrained seed CNN for classification.
    pub async fn open() -> Result<WebKiln, JsError> {
        hook_panics();
        let ctx = Context::new_async(ContextOptions {
            backend: Some("webgpu".into()),
            ..ContextOptions::default()
        })
        .await
        .map_err(js_err)?;
        let classifier = zoo::seed_cnn(&ctx, 1e-3, 0).map_err(js_err)?;
        Ok(WebKiln {
            ctx,
            state: Rc::new(RefCell::new(State {
                classifier,
                trainee: None,
                train_data: None,
                cursor: 0,
            })),
            suite: None,
        })
    }

    /// The adapter's name, backend and type, e.g. for the page header.
    pub fn adapter(&self) -> String {
        let i = self.ctx.adapter_info();
        format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
    }

    /// Every WGSL kernel as JSON `[[name, source], ...]`: the page compiles each with the
    /// browser's own WGSL compiler, which is stricter than naga in places.
    pub fn shader_sources() -> String {
        // As compiled: with their `// kiln:include` library pieces expanded.
        let expanded: Vec<(&str, &str)> = crate::shaders::SHADERS
            .iter()
            .filter_map(|(name, _)| Some((*name, crate::shaders::shader_source(name)?)))
            .collect();
        serde_json::to_string(&expanded).unwrap_or_else(|_| "[]".into())
    }

    /// Loads a checkpoint written by `kiln train` (or [`checkpoint::weights_only`] of one)
    /// into the classifier. Returns its metadata as JSON.
    pub fn load_checkpoint(&self, bytes: &[u8]) -> Result<String, JsError> {
        let mut st = self.state.try_borrow_mut().map_err(|_| busy())?;
        let meta = checkpoint::from_bytes(&mut st.classifier, bytes).map_err(js_err)?;
        let mut notes: Vec<(&String, &String)> = meta.notes.iter().collect();
        notes.sort();
        let notes: serde_json::Map<String, serde_json::Value> = notes
            .into_iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        Ok(serde_json::json!({"epoch": meta.epoch, "step": meta.step, "notes": notes}).to_string())
    }

    /// Class probabilities (n × 10, row-major) of `n` 28×28 grey images (`pixels`, values in
    /// [0, 1], ink bright on black, as the procedural digits and MNIST).
    pub async fn classify(&self, pixels: Vec<f32>) -> Result<Vec<f32>, JsError> {
        let n = pixels.len() / (SIDE * SIDE);
        if n == 0 || pixels.len() != n * SIDE * SIDE {
            return Err(js(format!(
                "classify: {} pixels is not a whole number of {SIDE}x{SIDE} images",
                pixels.len()
            )));
        }
        let probs = {
            let st = self.state.try_borrow().map_err(|_| busy())?;
            autograd::no_grad(|| -> crate::Result<Tensor> {
                let x = Tensor::from_slice(&self.ctx, &pixels, &[n, 1, SIDE, SIDE])?;
                let y = st.classifier.forward(&x, false)?;
                y.realize()?;
                Ok(y)
            })
            .map_err(js_err)?
        };
        probs.to_vec_async::<f32>().await.map_err(js_err)
    }

    /// `n` procedural digit images (n × 28 × 28, values in [0, 1]), deterministic for `seed`:
    /// the same images the native build draws.
    pub fn digit_images(n: usize, seed: u64) -> Vec<f32> {
        procedural_digits(n, seed).images
    }

    /// The labels of [`WebKiln::digit_images`]`(n, seed)`.
    pub fn digit_labels(n: usize, seed: u64) -> Vec<u8> {
        procedural_digits(n, seed).labels
    }

    /// Starts training from scratch: a freshly initialized seed CNN (Adam, rate `lr`) and `n`
    /// procedural training digits drawn with `seed`.
    pub fn start_training(&self, n: usize, seed: u64, lr: f32) -> Result<(), JsError> {
        if n == 0 {
            return Err(js("start_training: no training images asked for"));
        }
        let mut st = self.state.try_borrow_mut().map_err(|_| busy())?;
        let ds = procedural_digits(n, seed);
        st.trainee = Some(zoo::seed_cnn(&self.ctx, lr, seed).map_err(js_err)?);
        st.train_data = Some((Samples::images(&ds), Samples::labels(&ds)));
        st.cursor = 0;
        Ok(())
    }

    /// One optimizer step of the in-page model on the next `batch` training digits (cycling
    /// through them); resolves to the batch's loss once the GPU has run the step.
    pub async fn train_step(&self, batch: usize) -> Result<f32, JsError> {
        let loss = {
            let mut st = self.state.try_borrow_mut().map_err(|_| busy())?;
            let st = &mut *st;
            let (Some(model), Some((x, y))) = (st.trainee.as_mut(), st.train_data.as_ref()) else {
                return Err(js("train_step: call start_training first"));
            };
            let n = x.len();
            if batch == 0 || batch > n {
                return Err(js(format!(
                    "train_step: batch {batch} with {n} training images"
                )));
            }
            let idx: Vec<usize> = (0..batch).map(|i| (st.cursor + i) % n).collect();
            st.cursor = (st.cursor + batch) % n;
            let xb = x.gather(&self.ctx, &idx).map_err(js_err)?;
            let yb = y.gather(&self.ctx, &idx).map_err(js_err)?;
            let (loss, _) = model.train_step(&xb, &yb, None).map_err(js_err)?;
            model.realize_step(&[&loss]).map_err(js_err)?;
            loss
        };
        let v = loss.to_vec_async::<f32>().await.map_err(js_err)?;
        v.first()
            .copied()
            .ok_or_else(|| js("train_step: the loss is empty"))
    }

    /// Class probabilities of the in-page model for `pixels` (as [`WebKiln::classify`]).
    pub async fn classify_trained(&self, pixels: Vec<f32>) -> Result<Vec<f32>, JsError> {
        let n = pixels.len() / (SIDE * SIDE);
        if n == 0 || pixels.len() != n * SIDE * SIDE {
            return Err(js("classify_trained: not a whole number of images"));
        }
        let probs = {
            let st = self.state.try_borrow().map_err(|_| busy())?;
            let model = st
                .trainee
                .as_ref()
                .ok_or_else(|| js("classify_trained: call start_training first"))?;
            let samples = Samples::f32(pixels, &[1, SIDE, SIDE]);
            let all: Vec<usize> = (0..n).collect();
            autograd::no_grad(|| -> crate::Result<Tensor> {
                let y = model.forward(&samples.gather(&self.ctx, &all)?, false)?;
                y.realize()?;
                Ok(y)
            })
            .map_err(js_err)?
        };
        probs.to_vec_async::<f32>().await.map_err(js_err)
    }

    /// Loads a conformance set (`cases.json` and `cases.safetensors` bytes); returns the case
    /// names as a JSON list.
    pub fn load_conformance(
        &mut self,
        cases_json: &[u8],
        tensors: &[u8],
    ) -> Result<String, JsError> {
        let suite = Suite::from_bytes(cases_json, tensors).map_err(|e| js(format!("{e:#}")))?;
        let names: Vec<&str> = suite.cases.iter().map(|c| c.name.as_str()).collect();
        let out = serde_json::to_string(&names).map_err(js)?;
        self.suite = Some(Rc::new(suite));
        Ok(out)
    }

    /// Runs one conformance case; resolves to JSON `{"case", "passed", "failures"}`.
    pub async fn run_conformance_case(&self, name: String) -> Result<String, JsError> {
        let suite = self
            .suite
            .clone()
            .ok_or_else(|| js("run_conformance_case: call load_conformance first"))?;
        let case = suite
            .cases
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| js(format!("no conformance case named {name:?}")))?;
        let v = run_case_async(&self.ctx, &suite, case).await;
        Ok(serde_json::json!({
            "case": v.case,
            "passed": v.passed(),
            "failures": v.failures,
        })
        .to_string())
    }
}
