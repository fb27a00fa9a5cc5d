//! `Sequential`: a stack of layers with Keras-style compile / fit / evaluate / predict.
//!
//! One training step records the forward pass, the loss, the backward pass and the optimizer
//! update of every parameter, then realizes all of it in one submission. The loss and the
//! number of correct predictions accumulate on the GPU and are read back only every
//! `log_every` steps and at the end of an epoch.

use std::collections::HashMap;

use crate::autograd;
use crate::error::{Error, Result};
use crate::nn::metrics::{argmax_rows, Confusion, Metric};
use crate::nn::{cross_entropy_with_logits, Layer, Loss, Parameter};
use crate::optim::Optimizer;
use crate::{Context, Tensor};

/// Host data for a set of samples.
#[derive(Clone, Debug)]
pub enum Array {
    /// Floats (images, sequences of values, regression targets).
    F32(Vec<f32>),
    /// Integers (class labels, token ids).
    I32(Vec<i32>),
}

/// `n` samples of `shape` each, stored contiguously on the host.
#[derive(Clone, Debug)]
pub struct Samples {
    /// The values.
    pub data: Array,
    /// The shape of one sample (`[]` for one label per sample).
    pub shape: Vec<usize>,
}

impl Samples {
    /// A dataset's images as (1, rows, cols) samples.
    pub fn images(ds: &crate::data::Dataset) -> Self {
        Samples::f32(ds.images.clone(), &[1, ds.rows, ds.cols])
    }

    /// A dataset's labels as class indices.
    pub fn labels(ds: &crate::data::Dataset) -> Self {
        Samples::i32(ds.labels.iter().map(|&l| i32::from(l)).collect(), &[])
    }

    /// Float samples of `shape`.
    pub fn f32(data: Vec<f32>, shape: &[usize]) -> Self {
        Samples {
            data: Array::F32(data),
            shape: shape.to_vec(),
        }
    }

    /// Integer samples (labels, tokens) of `shape`.
    pub fn i32(data: Vec<i32>, shape: &[usize]) -> Self {
        Samples {
            data: Array::I32(data),
            shape: shape.to_vec(),
        }
    }

    fn per(&self) -> usize {
        self.shape.iter().product::<usize>().max(1)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        let n = match &self.data {
            Array::F32(v) => v.len(),
            Array::I32(v) => v.len(),
        };
        n / self.per()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples at `idx` as a tensor of shape [idx.len()] + shape.
    pub fn gather(&self, ctx: &Context, idx: &[usize]) -> Result<Tensor> {
        let per = self.per();
        let mut shape = vec![idx.len()];
        shape.extend(&self.shape);
        let n = self.len();
        if let Some(&bad) = idx.iter().find(|&&i| i >= n) {
            return Err(Error::invalid(
                "Samples::gather",
                format!("index {bad} of {n} samples"),
            ));
        }
        match &self.data {
            Array::F32(v) => {
                let mut out = Vec::with_capacity(idx.len() * per);
                for &i in idx {
                    out.extend_from_slice(&v[i * per..(i + 1) * per]);
                }
                Tensor::from_slice(ctx, &out, &shape)
            }
            Array::I32(v) => {
                let mut out = Vec::with_capacity(idx.len() * per);
                for &i in idx {
                    out.extend_from_slice(&v[i * per..(i + 1) * per]);
                }
                Tensor::from_slice(ctx, &out, &shape)
            }
        }
    }

    /// [`Samples::gather`] of images (C, H, W) with a random shift and rotation per image.
    pub fn gather_augmented(
        &self,
        ctx: &Context,
        idx: &[usize],
        max_shift: f32,
        max_degrees: f32,
        seed: u64,
        stream: u64,
    ) -> Result<Tensor> {
        let (Array::F32(v), [c, h, w]) = (&self.data, self.shape.as_slice()) else {
            return Err(Error::invalid(
                "augment",
                format!(
                    "needs float images (C, H, W), got samples of shape {:?}",
                    self.shape
                ),
            ));
        };
        let (c, h, w) = (*c, *h, *w);
        let per = c * h * w;
        let n = self.len();
        let mut rng = crate::data::Rng::with_stream(seed, stream);
        let mut out = Vec::with_capacity(idx.len() * per);
        for &i in idx {
            if i >= n {
                return Err(Error::invalid(
                    "augment",
                    format!("index {i} of {n} samples"),
                ));
            }
            // One motion per image, shared by its channels.
            let (dx, dy) = (
                rng.uniform(-max_shift, max_shift),
                rng.uniform(-max_shift, max_shift),
            );
            let deg = rng.uniform(-max_degrees, max_degrees);
            for ch in 0..c {
                let img = &v[i * per + ch * h * w..i * per + (ch + 1) * h * w];
                out.extend(crate::data::augment::shift_rotate(img, h, w, dx, dy, deg));
            }
        }
        let mut shape = vec![idx.len()];
        shape.extend(&self.shape);
        Tensor::from_slice(ctx, &out, &shape)
    }

    /// The i32 labels of samples `idx`, flattened.
    fn host_labels(&self, idx: &[usize]) -> Option<Vec<i32>> {
        let Array::I32(v) = &self.data else {
            return None;
        };
        let per = self.per();
        Some(
            idx.iter()
                .flat_map(|&i| v[i * per..(i + 1) * per].iter().copied())
                .collect(),
        )
    }

    fn class_labels(&self) -> Option<Vec<u32>> {
        match &self.data {
            Array::I32(v) => Some(v.iter().map(|&x| x.max(0) as u32).collect()),
            Array::F32(_) => None,
        }
    }
}

/// How to train.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Reshuffle the training data every epoch (seeded).
    pub shuffle: bool,
    /// Seed of the shuffling.
    pub seed: u64,
    /// Read loss and accuracy back every this many steps (for the progress bar).
    pub log_every: usize,
    /// Show a progress bar (stderr).
    pub progress: bool,
    /// The epoch to start counting from (resuming from a checkpoint).
    pub initial_epoch: usize,
    /// Random shifts (pixels) and rotations (degrees) applied to image samples (C, H, W) in
    /// training, seeded by (seed, epoch, step) so runs are reproducible.
    pub augment: Option<(f32, f32)>,
    /// The run's total epochs, for display when `fit` is called an epoch at a time
    /// (0: `initial_epoch + epochs`).
    pub total_epochs: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            log_every: 10,
            progress: true,
            initial_epoch: 0,
            total_epochs: 0,
            augment: None,
        }
    }
}

impl FitOptions {
    fn total(&self) -> usize {
        if self.total_epochs > 0 {
            self.total_epochs
        } else {
            self.initial_epoch + self.epochs
        }
    }
}

/// Figures of one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Training accuracy (classification).
    pub accuracy: Option<f64>,
    /// Validation loss and accuracy, when validation data was given.
    pub val: Option<EvalResult>,
    /// Wall time of the epoch's training steps.
    pub seconds: f64,
    /// Training samples per second.
    pub samples_per_s: f64,
}

/// Per-epoch results of [`Sequential::fit`], and every step's loss when requested.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// One entry per epoch.
    pub epochs: Vec<EpochStats>,
}

/// The result of [`Sequential::evaluate`].
#[derive(Clone, Debug, PartialEq)]
pub struct EvalResult {
    /// Mean loss.
    pub loss: f64,
    /// Accuracy (classification).
    pub accuracy: Option<f64>,
    /// Confusion matrix (classification).
    pub confusion: Option<Confusion>,
}

struct Compiled {
    optimizer: Optimizer,
    loss: Loss,
    metrics: Vec<Metric>,
    params: Vec<Parameter>,
}

/// A stack of layers applied in order.
pub struct Sequential {
    ctx: Context,
    layers: Vec<Box<dyn Layer>>,
    compiled: Option<Compiled>,
}

impl Sequential {
    /// An empty model on `ctx`.
    pub fn new(ctx: &Context) -> Self {
        Sequential {
            ctx: ctx.clone(),
            layers: Vec::new(),
            compiled: None,
        }
    }

    /// Appends a layer.
    pub fn add(&mut self, layer: impl Layer + 'static) -> &mut Self {
        // Name the layer's tensors once, by position: `<layer index>.<name>`.
        let i = self.layers.len();
        for p in layer.parameters().iter().chain(&layer.buffers()) {
            p.set_name(format!("{i}.{}", p.name()));
        }
        self.layers.push(Box::new(layer));
        self.compiled = None;
        self
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// One line per layer with its parameter count.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let mut total = 0;
        for (i, l) in self.layers.iter().enumerate() {
            let n: usize = l
                .parameters()
                .iter()
                .map(|p| p.shape().iter().product::<usize>())
                .sum();
            total += n;
            s.push_str(&format!("{i:>3}  {:<44} {n:>10} params\n", l.describe()));
        }
        s.push_str(&format!("     total {total} trainable parameters\n"));
        s
    }

    /// Trainable parameters, named `<layer index>.<name>`.
    pub fn parameters(&self) -> Vec<Parameter> {
        self.layers.iter().flat_map(|l| l.parameters()).collect()
    }

    /// Non-trainable state (running statistics), named like parameters.
    pub fn buffers(&self) -> Vec<Parameter> {
        self.layers.iter().flat_map(|l| l.buffers()).collect()
    }

    /// Sets the optimizer, the loss and the metrics reported by [`Sequential::fit`] (training
    /// accuracy is counted on the GPU when `Metric::Accuracy` is asked for; every metric is
    /// reported on the validation data).
    pub fn compile(&mut self, optimizer: Optimizer, loss: Loss, metrics: &[Metric]) -> &mut Self {
        let params = self.parameters();
        self.compiled = Some(Compiled {
            optimizer,
            loss,
            metrics: metrics.to_vec(),
            params,
        });
        self
    }

    /// The metrics given to [`Sequential::compile`].
    pub fn metrics(&self) -> &[Metric] {
        self.compiled.as_ref().map_or(&[], |c| &c.metrics)
    }

    /// The optimizer (after compile), e.g. to read its step count.
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.compiled.as_ref().map(|c| &c.optimizer)
    }

    pub(crate) fn optimizer_mut(&mut self) -> Option<&mut Optimizer> {
        self.compiled.as_mut().map(|c| &mut c.optimizer)
    }

    /// Runs every layer.
    pub fn forward(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.layers {
            h = l.forward(&h, training)?;
        }
        Ok(h)
    }

    /// The output and the loss. When the loss takes probabilities and the last layer reports
    /// the logits of its softmax ([`Layer::softmax_logits`]), the output is those logits and the
    /// loss is [`cross_entropy_with_logits`] (the same value, computed stably).
    fn output_and_loss(
        &self,
        x: &Tensor,
        y: &Tensor,
        loss: Loss,
        training: bool,
    ) -> Result<(Tensor, Tensor)> {
        let wants_logits = matches!(loss, Loss::CategoricalCrossEntropy { from_logits: false });
        if let (true, Some((last, body))) = (wants_logits, self.layers.split_last()) {
            let mut h = x.clone();
            for l in body {
                h = l.forward(&h, training)?;
            }
            if let Some(logits) = last.softmax_logits(&h, training) {
                let logits = logits?;
                let l = cross_entropy_with_logits(&logits, y)?;
                return Ok((logits, l));
            }
            let out = last.forward(&h, training)?;
            let l = loss.compute(&out, y)?;
            return Ok((out, l));
        }
        let out = self.forward(x, training)?;
        let l = loss.compute(&out, y)?;
        Ok((out, l))
    }

    /// Number of positions whose first largest score is at the label (as a [] tensor), the
    /// way [`argmax_rows`] predicts; `onehot` is (positions, classes).
    fn correct(&self, scores: &Tensor, onehot: &Tensor) -> Result<Tensor> {
        let c = *scores.shape().last().unwrap_or(&1);
        let positions = scores.numel() / c.max(1);
        let predicted = scores.reshape(&[positions, c])?.argmax(1, true)?;
        onehot.gather_elements(&predicted, 1)?.sum_all()
    }

    /// Trains for `opts.epochs` epochs on (`x`, `y`), validating on `validation` after each.
    /// Blocks until done; see [`Sequential::fit_async`] (the same loop, for the browser).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn fit(
        &mut self,
        x: &Samples,
        y: &Samples,
        validation: Option<(&Samples, &Samples)>,
        opts: &FitOptions,
    ) -> Result<History> {
        pollster::block_on(self.fit_async(x, y, validation, opts))
    }

    /// [`Sequential::fit`] without blocking a thread: every read-back is awaited, so it runs
    /// on the web (where the progress bar is not shown).
    pub async fn fit_async(
        &mut self,
        x: &Samples,
        y: &Samples,
        validation: Option<(&Samples, &Samples)>,
        opts: &FitOptions,
    ) -> Result<History> {
        let n = x.len();
        if n == 0 || y.len() != n {
            return Err(Error::invalid(
                "fit",
                format!("{n} inputs and {} targets", y.len()),
            ));
        }
        if opts.batch_size == 0 {
            return Err(Error::invalid("fit", "batch size 0"));
        }
        if self.compiled.is_none() {
            return Err(Error::invalid("fit", "call compile before fit"));
        }
        let classify = y.class_labels().is_some() && self.metrics().contains(&Metric::Accuracy);
        let mut history = History::default();
        let steps_per_epoch = n.div_ceil(opts.batch_size);
        for epoch in opts.initial_epoch..opts.initial_epoch + opts.epochs {
            let order = epoch_order(n, opts.shuffle, opts.seed, epoch as u64);
            let bar = progress_bar(opts, epoch, steps_per_epoch);
            let started = web_time::Instant::now();
            let mut loss_sum = Tensor::zeros(&self.ctx, &[])?;
            let mut correct_sum = Tensor::zeros(&self.ctx, &[])?;
            for (step, idx) in order.chunks(opts.batch_size).enumerate() {
                let xb = match opts.augment {
                    Some((shift, degrees)) => {
                        let stream = ((epoch as u64) << 32) | step as u64;
                        x.gather_augmented(&self.ctx, idx, shift, degrees, opts.seed, stream)?
                    }
                    None => x.gather(&self.ctx, idx)?,
                };
                let yb = y.gather(&self.ctx, idx)?;
                let labels = if classify { y.host_labels(idx) } else { None };
                let (loss, correct) = self.train_step(&xb, &yb, labels.as_deref())?;
                loss_sum = loss_sum.add(&loss.mul_scalar(idx.len() as f32)?)?;
                let mut extra = vec![&loss_sum];
                if let Some(c) = &correct {
                    correct_sum = correct_sum.add(c)?;
                    extra.push(&correct_sum);
                }
                self.realize_step(&extra)?;
                let done = ((step + 1) * opts.batch_size).min(n);
                if let Some(b) = &bar {
                    b.set_position(step as u64 + 1);
                    if (step + 1) % opts.log_every.max(1) == 0 || step + 1 == steps_per_epoch {
                        let seen = done.min(n) as f64;
                        let l = f64::from(scalar(&loss_sum).await?) / seen;
                        let acc = if classify {
                            let positions = seen * y.per() as f64;
                            format!(
                                " acc {:.4}",
                                f64::from(scalar(&correct_sum).await?) / positions
                            )
                        } else {
                            String::new()
                        };
                        let rate = seen / started.elapsed().as_secs_f64().max(1e-9);
                        b.set_message(format!("loss {l:.4}{acc} {rate:.1} samples/s"));
                    }
                }
            }
            self.ctx.synchronize_async().await?;
            let seconds = started.elapsed().as_secs_f64();
            let loss = f64::from(scalar(&loss_sum).await?) / n as f64;
            let accuracy = if classify {
                Some(f64::from(scalar(&correct_sum).await?) / (n * y.per()) as f64)
            } else {
                None
            };
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let val = match validation {
                Some((vx, vy)) => Some(self.evaluate_async(vx, vy, opts.batch_size).await?),
                None => None,
            };
            let stats = EpochStats {
                epoch: epoch + 1,
                loss,
                accuracy,
                val,
                seconds,
                samples_per_s: n as f64 / seconds.max(1e-9),
            };
            if opts.progress {
                eprintln!("{}", epoch_line(&stats, opts.total(), self.metrics()));
            }
            history.epochs.push(stats);
        }
        Ok(history)
    }

    /// Records one training step (forward, loss, backward, update) on a batch. Returns the
    /// batch's loss and, for classification, its number of correct predictions. Nothing runs
    /// until [`Sequential::realize_step`].
    /// `labels` (the batch's class labels on the host, as in `y`), when given, turns on counting
    /// correct predictions on the GPU.
    pub fn train_step(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        labels: Option<&[i32]>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let compiled = self
            .compiled
            .as_ref()
            .ok_or_else(|| Error::invalid("train_step", "call compile first"))?;
        let loss_fn = compiled.loss;
        let params = compiled.params.clone();
        let leaves: Vec<Tensor> = params.iter().map(Parameter::track).collect();
        let result = (|| {
            let (out, loss) = self.output_and_loss(x, y, loss_fn, true)?;
            let one = Tensor::ones(&self.ctx, &[])?;
            let refs: Vec<&Tensor> = leaves.iter().collect();
            let grads = autograd::grad(&[&loss], &[&one], &refs)?;
            let correct = match labels {
                Some(l) => {
                    let classes = *out.shape().last().unwrap_or(&1);
                    let onehot = onehot(&self.ctx, l, classes)?;
                    Some(autograd::no_grad(|| self.correct(&out.detach(), &onehot))?)
                }
                None => None,
            };
            Ok::<_, Error>((loss.detach(), correct, grads))
        })();
        for p in &params {
            p.untrack();
        }
        let (loss, correct, grads) = result?;
        let grads: Vec<Tensor> = grads
            .into_iter()
            .zip(&params)
            .map(|(g, p)| match g {
                Some(g) => Ok(g),
                None => Tensor::zeros(&self.ctx, &p.shape()),
            })
            .collect::<Result<_>>()?;
        let compiled = self
            .compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("train_step", "call compile first"))?;
        autograd::no_grad(|| compiled.optimizer.update(&params, &grads))?;
        Ok((loss, correct))
    }

    /// Realizes the pending step: every parameter, optimizer state and buffer, plus `extra`,
    /// in one submission.
    pub fn realize_step(&self, extra: &[&Tensor]) -> Result<()> {
        let mut targets: Vec<Tensor> = match &self.compiled {
            Some(c) => c.params.iter().map(Parameter::value).collect(),
            None => self.parameters().iter().map(Parameter::value).collect(),
        };
        targets.extend(self.buffers().iter().map(Parameter::value));
        if let Some(c) = &self.compiled {
            targets.extend(c.optimizer.state());
        }
        let mut refs: Vec<&Tensor> = targets.iter().collect();
        refs.extend_from_slice(extra);
        self.ctx.realize(&refs)
    }

    /// Mean loss, accuracy and confusion matrix on (`x`, `y`), in inference mode. Blocks until
    /// done; see [`Sequential::evaluate_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn evaluate(&self, x: &Samples, y: &Samples, batch_size: usize) -> Result<EvalResult> {
        pollster::block_on(self.evaluate_async(x, y, batch_size))
    }

    /// [`Sequential::evaluate`] without blocking a thread (runs on the web).
    pub async fn evaluate_async(
        &self,
        x: &Samples,
        y: &Samples,
        batch_size: usize,
    ) -> Result<EvalResult> {
        let loss_fn = self
            .compiled
            .as_ref()
            .map(|c| c.loss)
            .ok_or_else(|| Error::invalid("evaluate", "call compile first"))?;
        let n = x.len();
        if y.len() != n || batch_size == 0 {
            return Err(Error::invalid(
                "evaluate",
                format!("{n} inputs, {} targets", y.len()),
            ));
        }
        let all: Vec<usize> = (0..n).collect();
        let mut loss_sum = 0.0f64;
        let mut predicted = Vec::new();
        let mut classes = 0;
        for idx in all.chunks(batch_size) {
            // Record under no_grad; the reads below only wait for the GPU.
            let (out, loss) = autograd::no_grad(|| -> Result<(Tensor, Tensor)> {
                let xb = x.gather(&self.ctx, idx)?;
                let yb = y.gather(&self.ctx, idx)?;
                let (out, loss) = self.output_and_loss(&xb, &yb, loss_fn, false)?;
                self.ctx.realize(&[&out, &loss])?;
                Ok((out, loss))
            })?;
            loss_sum += f64::from(scalar(&loss).await?) * idx.len() as f64;
            if y.class_labels().is_some() {
                classes = *out.shape().last().unwrap_or(&1);
                predicted.extend(argmax_rows(&out.to_vec_async::<f32>().await?, classes));
            }
        }
        let (accuracy, confusion) = match y.class_labels() {
            Some(truth) => {
                let conf = Confusion::new(classes, &truth, &predicted);
                (Some(conf.accuracy()), Some(conf))
            }
            None => (None, None),
        };
        Ok(EvalResult {
            loss: loss_sum / n.max(1) as f64,
            accuracy,
            confusion,
        })
    }

    /// The model's outputs for `x` (inference mode), concatenated on the host. Blocks until
    /// done; see [`Sequential::predict_async`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn predict(&self, x: &Samples, batch_size: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.predict_async(x, batch_size))
    }

    /// [`Sequential::predict`] without blocking a thread (runs on the web).
    pub async fn predict_async(&self, x: &Samples, batch_size: usize) -> Result<Vec<f32>> {
        let all: Vec<usize> = (0..x.len()).collect();
        let mut out = Vec::new();
        for idx in all.chunks(batch_size.max(1)) {
            let y = autograd::no_grad(|| -> Result<Tensor> {
                let xb = x.gather(&self.ctx, idx)?;
                self.forward(&xb, false)
            })?;
            out.extend(y.to_vec_async::<f32>().await?);
        }
        Ok(out)
    }

    /// Every parameter, buffer and optimizer state tensor by name (for checkpoints).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = Vec::new();
        let params = self.parameters();
        for p in &params {
            v.push((format!("param.{}", p.name()), p.value()));
        }
        for b in self.buffers() {
            v.push((format!("buffer.{}", b.name()), b.value()));
        }
        if let Some(c) = &self.compiled {
            let names = c.optimizer.state_names();
            let state = c.optimizer.state();
            for (k, t) in state.into_iter().enumerate() {
                let p = &params[k / names.len().max(1)];
                v.push((
                    format!("optim.{}.{}", p.name(), names[k % names.len().max(1)]),
                    t,
                ));
            }
        }
        v
    }

    /// Restores tensors saved by [`Sequential::named_tensors`]; `step` is the optimizer's.
    pub fn load_named(&mut self, mut tensors: HashMap<String, Tensor>, step: u64) -> Result<()> {
        let has_state = tensors.keys().any(|k| k.starts_with("optim."));
        let mut take = |name: String, shape: &[usize]| -> Result<Tensor> {
            let t = tensors.remove(&name).ok_or_else(|| {
                Error::invalid("load", format!("checkpoint has no tensor {name}"))
            })?;
            if t.shape() != shape {
                return Err(Error::shape("load (checkpoint vs model)", t.shape(), shape));
            }
            Ok(t)
        };
        let params = self.parameters();
        for p in &params {
            p.set(take(format!("param.{}", p.name()), &p.shape())?);
        }
        for b in self.buffers() {
            b.set(take(format!("buffer.{}", b.name()), &b.shape())?);
        }
        if let (Some(opt), true) = (self.optimizer_mut(), has_state || step > 0) {
            let names = opt.state_names();
            let mut state = Vec::new();
            for p in &params {
                for n in names {
                    state.push(take(format!("optim.{}.{n}", p.name()), &p.shape())?);
                }
            }
            if !names.is_empty() || step > 0 {
                opt.load_state(state, params.len(), step)?;
            }
        }
        Ok(())
    }
}

/// The sample order of one epoch: shuffled with a seed derived from (seed, epoch), so a run
/// resumed at an epoch boundary sees the same order as an uninterrupted one.
fn epoch_order(n: usize, shuffle: bool, seed: u64, epoch: u64) -> Vec<usize> {
    if !shuffle {
        return (0..n).collect();
    }
    crate::data::Rng::with_stream(seed, epoch).permutation(n)
}

#[cfg(not(target_arch = "wasm32"))]
fn progress_bar(opts: &FitOptions, epoch: usize, steps: usize) -> Option<indicatif::ProgressBar> {
    if !opts.progress {
        return None;
    }
    let bar = indicatif::ProgressBar::new(steps as u64);
    let style = indicatif::ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len} steps  {msg}  eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(format!("{}/{}", epoch + 1, opts.total()));
    bar.enable_steady_tick(std::time::Duration::from_millis(500));
    Some(bar)
}

fn epoch_line(s: &EpochStats, total: usize, metrics: &[Metric]) -> String {
    let mut line = format!("epoch {}/{total}: loss {:.4}", s.epoch, s.loss);
    if let Some(a) = s.accuracy {
        line.push_str(&format!(" accuracy {a:.4}"));
    }
    if let Some(v) = &s.val {
        line.push_str(&format!(" val_loss {:.4}", v.loss));
        if let Some(c) = &v.confusion {
            for m in metrics {
                line.push_str(&format!(" val_{} {:.4}", m.name(), m.from_confusion(c)));
            }
        }
    }
    line.push_str(&format!(
        " ({:.1}s, {:.1} samples/s)",
        s.seconds, s.samples_per_s
    ));
    line
}

/// No progress bar in the browser: there is no terminal.
#[cfg(target_arch = "wasm32")]
struct NoBar;

#[cfg(target_arch = "wasm32")]
impl NoBar {
    fn set_position(&self, _: u64) {}
    fn set_message(&self, _: String) {}
    fn finish_and_clear(&self) {}
}

#[cfg(target_arch = "wasm32")]
fn progress_bar(_: &FitOptions, _: usize, _: usize) -> Option<NoBar> {
    None
}

/// Reads a one-element tensor without blocking a thread.
async fn scalar(t: &Tensor) -> Result<f32> {
    match t.to_vec_async::<f32>().await?.as_slice() {
        [x] => Ok(*x),
        v => Err(Error::invalid(
            "item",
            format!(
                "tensor of shape {:?} has {} elements, not 1",
                t.shape(),
                v.len()
            ),
        )),
    }
}

/// One-hot rows (positions, classes) for class labels; out-of-range labels give a zero row.
fn onehot(ctx: &Context, labels: &[i32], classes: usize) -> Result<Tensor> {
    let mut out = vec![0.0f32; labels.len() * classes];
    for (k, &l) in labels.iter().enumerate() {
        if l >= 0 && (l as usize) < classes {
            out[k * classes + l as usize] = 1.0;
        }
    }
    Tensor::from_slice(ctx, &out, &[labels.len(), classes])
}

#[cfg(test)]
mod tests {
    use super::epoch_order;

    #[test]
    fn epoch_orders_are_seeded_permutations_that_change_every_epoch() {
        let n = 1000;
        let a = epoch_order(n, true, 7, 0);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "a permutation");
        assert_eq!(a, epoch_order(n, true, 7, 0), "deterministic");
        assert_ne!(a, epoch_order(n, true, 7, 1), "each epoch its own order");
        assert_ne!(a, epoch_order(n, true, 8, 0), "each seed its own order");
        assert_ne!(a, (0..n).collect::<Vec<_>>(), "shuffled");
        assert_eq!(epoch_order(n, false, 7, 3), (0..n).collect::<Vec<_>>());
    }
}
