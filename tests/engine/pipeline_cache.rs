//! The persisted pipeline cache: written after compiling, read by the next context on the same
//! adapter, and harmless when the file is missing, damaged, or made for another device (the
//! context then compiles from scratch). On adapters without `PIPELINE_CACHE` (GL) there is no
//! cache and saving writes nothing.

use crate::common;

use std::path::{Path, PathBuf};

use common::{assert_close, Rng, RngExt};
use kiln::{Context, ContextOptions, Tensor};

fn cache_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn open(dir: &Path) -> Context {
    let ctx = Context::with_options(ContextOptions {
        pipeline_cache: Some(dir.to_path_buf()),
        ..ContextOptions::from_env()
    })
    .unwrap();
    kiln::testing::set_poison_outputs(&ctx, true);
    ctx
}

/// A matmul and a softmax checked against the CPU reference: pipelines compiled through
/// whatever cache the context has must still compute the right thing.
fn check_work(ctx: &Context) {
    let (m, k, n) = (13, 37, 11);
    let mut rng = Rng::new(7);
    let a = rng.vec(m * k, -1.0, 1.0);
    let b = rng.vec(k * n, -1.0, 1.0);
    let ta = Tensor::from_slice(ctx, &a, &[m, k]).unwrap();
    let tb = Tensor::from_slice(ctx, &b, &[k, n]).unwrap();
    let got = ta.matmul(&tb).unwrap().to_vec::<f32>().unwrap();
    let (want, _) = kiln::reference::matmul::matmul(&a, &[m, k], &b, &[k, n], false, false);
    assert_close("matmul through the pipeline cache", &got, &want, 1e-4, 1e-4);
}

fn supported(ctx: &Context) -> bool {
    ctx.features().contains(wgpu::Features::PIPELINE_CACHE)
}

#[test]
fn a_saved_cache_is_loaded_by_the_next_context() {
    let dir = cache_dir("roundtrip");
    let ctx = open(&dir);
    assert_eq!(ctx.pipeline_cache_file().map(|(_, n)| n).unwrap_or(0), 0);
    check_work(&ctx);
    let saved = ctx.save_pipeline_cache().unwrap();
    if !supported(&ctx) {
        assert!(saved.is_none(), "no PIPELINE_CACHE, yet a file was written");
        assert!(ctx.pipeline_cache_file().is_none());
        return;
    }
    let path = saved.expect("a Vulkan adapter has cache data after compiling");
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        kiln::context::unseal_cache(&bytes).is_some(),
        "the saved file does not pass its own checksum"
    );
    drop(ctx);
    let again = open(&dir);
    let (p, loaded) = again.pipeline_cache_file().unwrap();
    assert_eq!(p, path.as_path());
    assert_eq!(loaded + 24, bytes.len(), "the whole saved cache was loaded");
    check_work(&again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_or_foreign_cache_files_are_ignored() {
    let dir = cache_dir("damaged");
    let ctx = open(&dir);
    check_work(&ctx);
    let Some(path) = ctx.save_pipeline_cache().unwrap() else {
        assert!(!supported(&ctx));
        return;
    };
    drop(ctx);
    let good = std::fs::read(&path).unwrap();
    let data = kiln::context::unseal_cache(&good).unwrap().to_vec();
    // wgpu's header: magic 8, version 4, ABI 4, backend 1, adapter key 15, ...
    let mut foreign = data.clone();
    foreign[20] ^= 0x5A;
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "random bytes",
            Rng::new(3)
                .vec(4096, -1e3, 1e3)
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("one bit flipped in the data", flipped),
        ("empty", Vec::new()),
        // Intact for kiln's checksum, but wgpu's header names another adapter: wgpu rejects it
        // (a validation error even with `fallback`) and the context starts an empty cache.
        (
            "made for another adapter",
            kiln::context::seal_cache(&foreign),
        ),
    ];
    for (what, bytes) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let ctx = open(&dir);
        let (_, loaded) = ctx.pipeline_cache_file().unwrap();
        assert_eq!(loaded, 0, "{what}: {loaded} bytes were used");
        check_work(&ctx);
        // Saving replaces the bad file with a good one.
        let saved = ctx.save_pipeline_cache().unwrap().unwrap();
        assert!(
            kiln::context::unseal_cache(&std::fs::read(&saved).unwrap()).is_some(),
            "{what}: the file written after it is not valid"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_cache_envelope_rejects_every_damage() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 37 % 251) as u8).collect();
    let sealed = kiln::context::seal_cache(&data);
    assert_eq!(kiln::context::unseal_cache(&sealed), Some(&data[..]));
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x10;
        assert_eq!(kiln::context::unseal_cache(&bad), None, "byte {i} flipped");
    }
    assert_eq!(
        kiln::context::unseal_cache(&sealed[..sealed.len() - 1]),
        None
    );
    assert_eq!(kiln::context::unseal_cache(&[]), None);
}

#[test]
fn a_cache_folder_that_cannot_be_created_is_an_io_error_naming_it() {
    use std::error::Error as _;
    let dir = cache_dir("unwritable");
    // The cache folder would sit under a regular file, so it cannot be created.
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let folder = blocker.join("cache");
    let ctx = open(&folder);
    check_work(&ctx);
    let result = ctx.save_pipeline_cache();
    if !supported(&ctx) {
        assert!(result.unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }
    let err = result.expect_err("saving under a regular file succeeded");
    assert!(
        matches!(&err, kiln::Error::Io { path, .. } if *path == folder),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.starts_with("cannot create folder"), "{msg}");
    assert!(msg.contains(&folder.display().to_string()), "{msg}");
    assert!(
        err.source().is_some_and(|s| s.is::<std::io::Error>()),
        "the io::Error is not the source of {msg:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
