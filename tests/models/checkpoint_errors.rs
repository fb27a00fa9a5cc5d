//! Checkpoint files that are missing, unwritable, corrupt or of another format are rejected
//! with an error that names the file and the reason, and whose `source()` is the underlying
//! cause (the io error, or the safetensors decoder's error).

use crate::common;

use std::error::Error as _;
use std::path::{Path, PathBuf};

use common::ctx;
use kiln::nn::checkpoint::{self, CheckpointMeta};
use kiln::nn::{Dense, Loss, Sequential};
use kiln::optim::Optimizer;
use kiln::Error;

fn model(seed: u64) -> Sequential {
    let ctx = ctx();
    let mut m = Sequential::new(ctx);
    m.add(Dense::new(ctx, 5, 3, None, seed).unwrap());
    m.compile(Optimizer::adam(0.1), Loss::Mse, &[]);
    m
}

/// A fresh, empty folder for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts that `err` is an [`Error::Io`] about `path` with an io error of `kind` as its source.
fn assert_io(err: &Error, path: &Path, kind: std::io::ErrorKind) {
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Io { path: p, .. } if p == path),
        "not an io error about {}: {err:?}",
        path.display()
    );
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    let io = err
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .unwrap_or_else(|| panic!("source of {msg:?} is not an io::Error"));
    assert_eq!(io.kind(), kind, "{msg}");
    assert!(
        !msg.contains(&io.to_string()),
        "the cause belongs to source(), not {msg:?}"
    );
    assert_eq!(err.report(), format!("{msg}: {io}"));
}

/// Asserts that `err` is an [`Error::Format`] of a checkpoint at `path` whose message says
/// `reason`, and returns its source.
fn assert_format<'a>(
    err: &'a Error,
    path: &Path,
    reason: &str,
) -> Option<&'a (dyn std::error::Error + 'static)> {
    let msg = err.to_string();
    match err {
        Error::Format {
            format,
            file,
            reason: r,
            ..
        } => {
            assert_eq!(*format, "checkpoint", "{msg}");
            assert_eq!(file, path, "{msg}");
            assert!(r.contains(reason), "{msg} does not say {reason:?}");
        }
        other => panic!("not a format error: {other:?}"),
    }
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    err.source()
}

#[test]
fn loading_a_missing_checkpoint_is_an_io_error_naming_the_file() {
    let dir = scratch("ckpt-missing");
    let path = dir.join("nowhere.safetensors");
    let err = checkpoint::load(&mut model(1), &path).unwrap_err();
    assert_io(&err, &path, std::io::ErrorKind::NotFound);
    assert!(err.to_string().starts_with("cannot read"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn saving_into_a_missing_folder_is_an_io_error_naming_the_file() {
    let dir = scratch("ckpt-unwritable");
    let path = dir.join("no-such-folder").join("model.safetensors");
    let err = checkpoint::save(&model(1), &path, &CheckpointMeta::default()).unwrap_err();
    assert_io(&err, &path, std::io::ErrorKind::NotFound);
    assert!(err.to_string().starts_with("cannot write"), "{err}");
    // Nothing was left behind, not even the temporary file.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupt_checkpoint_files_are_format_errors_with_the_decoder_error_as_source() {
    let dir = scratch("ckpt-corrupt");
    let good = checkpoint::to_bytes(&model(1), &CheckpointMeta::default()).unwrap();

    // Not safetensors at all: the header length is nonsense.
    let path = dir.join("garbage.safetensors");
    std::fs::write(&path, b"definitely not a checkpoint").unwrap();
    let err = checkpoint::load(&mut model(2), &path).unwrap_err();
    let source = assert_format(&err, &path, "not a valid safetensors file")
        .unwrap_or_else(|| panic!("{err} has no source"));
    assert!(
        source.is::<safetensors::SafeTensorError>(),
        "source is {source:?}"
    );
    assert!(
        err.report().ends_with(&source.to_string()),
        "{}",
        err.report()
    );

    // A torn file: the header survives, the tensor data does not.
    let path = dir.join("torn.safetensors");
    std::fs::write(&path, &good[..good.len() - 7]).unwrap();
    let err = checkpoint::load(&mut model(2), &path).unwrap_err();
    let source = assert_format(&err, &path, "not a valid safetensors file")
        .unwrap_or_else(|| panic!("{err} has no source"));
    assert!(
        source.is::<safetensors::SafeTensorError>(),
        "source is {source:?}"
    );

    // The same bytes from memory are named as such.
    let err = checkpoint::from_bytes(&mut model(2), &good[..good.len() - 7]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("checkpoint bytes in memory: not a valid safetensors file"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_safetensors_file_of_another_format_is_a_format_error_without_a_source() {
    let dir = scratch("ckpt-other");
    let path = dir.join("other.safetensors");
    let data = [1.0f32, 2.0, 3.0];
    let bytes: &[u8] = bytemuck::cast_slice(&data);
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3], bytes).unwrap();
    std::fs::write(&path, safetensors::serialize([("w", view)], None).unwrap()).unwrap();
    let err = checkpoint::load(&mut model(1), &path).unwrap_err();
    assert!(assert_format(&err, &path, "format is None").is_none());
    assert!(err.to_string().contains("kiln-checkpoint-1"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_good_checkpoint_still_round_trips_through_a_file() {
    let dir = scratch("ckpt-good");
    let path = dir.join("model.safetensors");
    let meta = CheckpointMeta {
        epoch: 3,
        step: 0,
        ..Default::default()
    };
    checkpoint::save(&model(1), &path, &meta).unwrap();
    let back = checkpoint::load(&mut model(2), &path).unwrap();
    assert_eq!(back, meta);
    std::fs::remove_dir_all(&dir).unwrap();
}
