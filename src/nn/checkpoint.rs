//! Checkpoints: a model's parameters, buffers and optimizer state as safetensors, with the
//! epoch and optimizer step in the metadata. Files are written atomically: a temporary file in
//! the same folder, flushed, then renamed over the target, so a crash never leaves a torn file.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::nn::Sequential;
use crate::Tensor;

const FORMAT: &str = "kiln-checkpoint-1";

/// What a checkpoint records besides tensors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointMeta {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// Free-form notes (e.g. the model summary).
    pub notes: HashMap<String, String>,
}

/// How errors about checkpoint bytes name them until a file is known ([`load`] names the file).
const IN_MEMORY: &str = "bytes in memory";

/// An [`Error::Format`]: the checkpoint bytes are wrong in the way `reason` says.
fn bad(reason: impl Into<String>) -> Error {
    Error::format("checkpoint", IN_MEMORY, reason)
}

/// An [`Error::Format`] caused by the safetensors decoder's (or encoder's) error `e`.
fn bad_st(reason: impl Into<String>, e: safetensors::SafeTensorError) -> Error {
    Error::format_caused("checkpoint", IN_MEMORY, reason, e)
}

/// Serializes the model (parameters, buffers, optimizer state) to safetensors bytes. Reads
/// every tensor back from the GPU, blocking; see [`to_bytes_async`].
#[cfg(not(target_arch = "wasm32"))]
pub fn to_bytes(model: &Sequential, meta: &CheckpointMeta) -> Result<Vec<u8>> {
    pollster::block_on(to_bytes_async(model, meta))
}

/// [`to_bytes`] without blocking a thread (runs on the web, where the page offers the bytes
/// as a download).
pub async fn to_bytes_async(model: &Sequential, meta: &CheckpointMeta) -> Result<Vec<u8>> {
    let named = model.named_tensors();
    let refs: Vec<&Tensor> = named.iter().map(|(_, t)| t).collect();
    if let Some(first) = refs.first() {
        first.context().realize(&refs)?;
    }
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(named.len());
    for (name, t) in &named {
        let v = t.to_vec_async::<f32>().await?;
        data.push((
            name.clone(),
            t.shape().to_vec(),
            bytemuck::cast_slice(&v).to_vec(),
        ));
    }
    let views = data
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| bad_st(format!("cannot serialize tensor {n}"), e))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut info = meta.notes.clone();
    info.insert("format".into(), FORMAT.into());
    info.insert("epoch".into(), meta.epoch.to_string());
    info.insert("step".into(), meta.step.to_string());
    safetensors::serialize(views, Some(info)).map_err(|e| bad_st("cannot serialize", e))
}

/// Loads a checkpoint made by [`to_bytes`] into `model` (same architecture, compiled with the
/// same optimizer kind). Rejects corrupt bytes and other formats with an [`Error::Format`]
/// (the safetensors decoder's error as its source, when it found the fault), and tensors the
/// model lacks or shapes it does not have with the reason.
pub fn from_bytes(model: &mut Sequential, bytes: &[u8]) -> Result<CheckpointMeta> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| bad_st("not a valid safetensors file", e))?;
    let info = header.metadata().clone().unwrap_or_default();
    match info.get("format") {
        Some(f) if f == FORMAT => {}
        other => return Err(bad(format!("format is {other:?}, expected {FORMAT:?}"))),
    }
    let num = |k: &str| -> Result<u64> {
        info.get(k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(format!("metadata {k} is missing or not a number")))
    };
    let meta = CheckpointMeta {
        epoch: num("epoch")? as usize,
        step: num("step")?,
        notes: info
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "format" | "epoch" | "step"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad_st("corrupt", e))?;
    let ctx = model
        .parameters()
        .first()
        .map(|p| p.value().context().clone())
        .ok_or_else(|| Error::invalid("checkpoint", "the model has no parameters"))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.iter() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(bad(format!(
                "tensor {name} is {:?}, expected F32",
                view.dtype()
            )));
        }
        let v: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        tensors.insert(
            name.to_string(),
            Tensor::from_slice(&ctx, &v, view.shape())?,
        );
    }
    model.load_named(tensors, meta.step)?;
    Ok(meta)
}

/// Drops the optimizer state from checkpoint bytes, keeping parameters, buffers and notes:
/// a model file for inference (a third the size of an Adam checkpoint). The optimizer step
/// becomes 0 (so a compiled model loads it with fresh optimizer state) and the original step
/// is kept in the note `trained_steps`. Works on bytes only (no GPU).
pub fn weights_only(bytes: &[u8]) -> Result<Vec<u8>> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| bad_st("not a valid safetensors file", e))?;
    let mut info = header.metadata().clone().unwrap_or_default();
    if info.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(format!(
            "format is {:?}, expected {FORMAT:?}",
            info.get("format")
        )));
    }
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad_st("corrupt", e))?;
    let mut kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
        .iter()
        .filter(|(name, _)| !name.starts_with("optim."))
        .map(|(name, view)| (name.to_string(), view))
        .collect();
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    let step = info.get("step").cloned().unwrap_or_else(|| "0".into());
    info.insert("trained_steps".into(), step);
    info.insert("step".into(), "0".into());
    safetensors::serialize(kept, Some(info)).map_err(|e| bad_st("cannot serialize", e))
}

/// Saves the model to `path` atomically (a complete file or none: see the module docs); a
/// failed write is an [`Error::Io`] naming `path`.
#[cfg(not(target_arch = "wasm32"))]
pub fn save(model: &Sequential, path: &std::path::Path, meta: &CheckpointMeta) -> Result<()> {
    let bytes = to_bytes(model, meta)?;
    crate::fsio::write_atomically(path, &bytes).map_err(|e| Error::io("cannot write", path, e))
}

/// Loads a checkpoint file into `model`, as [`from_bytes`] does; a missing or unreadable file
/// is an [`Error::Io`] and a corrupt one an [`Error::Format`], both naming `path`.
#[cfg(not(target_arch = "wasm32"))]
pub fn load(model: &mut Sequential, path: &std::path::Path) -> Result<CheckpointMeta> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    from_bytes(model, &bytes).map_err(|e| e.in_file(path))
}
