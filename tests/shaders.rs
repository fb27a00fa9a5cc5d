//! Every WGSL file in shaders/ parses and validates with naga (its `// kiln:include` library
//! pieces from shaders/lib/ expanded), needs no GPU, stays within WebGPU's default compute
//! limits, and is registered with the crate; every library piece is used and validates.

use std::collections::BTreeSet;
use std::path::Path;

fn shader_files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| {
            let name = p
                .file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let raw = std::fs::read_to_string(&p).expect("readable shader");
            let src = kiln::kernels::expand_includes(&raw)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name, src)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no shaders found in {}", dir.display());
    files
}

#[test]
fn every_shader_validates_with_naga() {
    let mut failures = Vec::new();
    for (name, src) in shader_files() {
        let module = match naga::front::wgsl::parse_str(&src) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}.wgsl: {}", e.emit_to_string(&src)));
                continue;
            }
        };
        // A shader that enables an extension (f16, cooperative matrices) gets that capability
        // only; tests/matmul_f16.rs checks those shaders fail without it.
        let mut caps = naga::valid::Capabilities::empty();
        if src.contains("enable f16;") {
            caps |= naga::valid::Capabilities::SHADER_FLOAT16;
        }
        if src.contains("enable wgpu_cooperative_matrix;") {
            caps |= naga::valid::Capabilities::COOPERATIVE_MATRIX;
        }
        let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
        if let Err(e) = validator.validate(&module) {
            failures.push(format!("{name}.wgsl: {}", e.emit_to_string(&src)));
        }
    }
    assert!(
        failures.is_empty(),
        "invalid shaders:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_entry_point_fits_webgpu_default_limits() {
    for (name, src) in shader_files() {
        let module = naga::front::wgsl::parse_str(&src).expect("parses");
        for ep in &module.entry_points {
            let [x, y, z] = ep.workgroup_size;
            let invocations = x * y * z;
            assert!(
                invocations <= 256,
                "{name}::{} uses {invocations} invocations per workgroup (WebGPU default max 256)",
                ep.name
            );
        }
        let mut shared = 0u64;
        for (_, var) in module.global_variables.iter() {
            if var.space == naga::AddressSpace::WorkGroup {
                shared += u64::from(module.types[var.ty].inner.size(module.to_ctx()));
            }
        }
        assert!(
            shared <= 16384,
            "{name} declares {shared} bytes of workgroup memory (WebGPU default max 16 KiB)"
        );
    }
}

#[test]
fn every_shader_file_is_registered_and_every_registered_shader_exists() {
    let files: BTreeSet<String> = shader_files().into_iter().map(|(n, _)| n).collect();
    let registered: BTreeSet<String> = kiln::kernels::SHADERS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(files, registered, "shaders/ and kernels::SHADERS disagree");
    for (name, src) in shader_files() {
        assert_eq!(
            kiln::kernels::shader_source(&name),
            Some(src.as_str()),
            "{name}: registry holds a different source"
        );
    }
}

#[test]
fn every_library_piece_is_registered_used_and_unknown_pieces_are_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders/lib");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("shaders/lib exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| p.file_stem().expect("name").to_string_lossy().into_owned())
        .collect();
    let registered: BTreeSet<String> = kiln::kernels::LIBRARY
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(
        files, registered,
        "shaders/lib and kernels::LIBRARY disagree"
    );
    for (name, _) in kiln::kernels::LIBRARY {
        let directive = format!("// kiln:include {name}");
        let users = kiln::kernels::SHADERS
            .iter()
            .filter(|(_, s)| s.lines().any(|l| l.trim() == directive))
            .count();
        assert!(users > 0, "library piece {name} is included by no shader");
    }
    let err = kiln::kernels::expand_includes("// kiln:include nothing_here\n").unwrap_err();
    assert!(err.contains("nothing_here"), "{err}");
}
