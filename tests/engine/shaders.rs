//! Every shader module the crate compiles (`shaders::SHADERS`: one WGSL file of shaders/, or a
//! file with a tail appended, with its `// kiln:include` library pieces from shaders/lib/
//! expanded) parses and validates with naga, needs no GPU, stays within WebGPU's default
//! compute limits, and is made of the files in shaders/, all of them used; every library piece
//! is registered and used.

use std::collections::BTreeSet;
use std::path::Path;

/// The files of shaders/ as written (includes not expanded).
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
            let src = std::fs::read_to_string(&p).expect("readable shader");
            (name, src)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no shaders found in {}", dir.display());
    files
}

/// The registered modules, as the crate compiles them (library pieces expanded).
fn modules() -> Vec<(String, String)> {
    kiln::shaders::SHADERS
        .iter()
        .map(|(n, _)| {
            let src = kiln::shaders::shader_source(n)
                .unwrap_or_else(|| panic!("{n}: its library pieces do not expand"));
            (n.to_string(), src.to_string())
        })
        .collect()
}

/// What a module may use: modules named `*_sg` use subgroup operations, which kiln compiles
/// only on adapters with the SUBGROUP feature; a module that enables an extension (f16,
/// cooperative matrices) gets that capability (tests/kernels/matmul_f16.rs checks those refuse without
/// it); every other module must do without.
fn capabilities(name: &str, src: &str) -> naga::valid::Capabilities {
    let mut caps = naga::valid::Capabilities::empty();
    if name.ends_with("_sg") {
        caps |= naga::valid::Capabilities::SUBGROUP;
    }
    if src.contains("enable f16;") {
        caps |= naga::valid::Capabilities::SHADER_FLOAT16;
    }
    if src.contains("enable wgpu_cooperative_matrix;") {
        caps |= naga::valid::Capabilities::COOPERATIVE_MATRIX;
    }
    caps
}

#[test]
fn every_shader_validates_with_naga() {
    let mut failures = Vec::new();
    for (name, src) in modules() {
        let module = match naga::front::wgsl::parse_str(&src) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}.wgsl: {}", e.emit_to_string(&src)));
                continue;
            }
        };
        let mut validator = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            capabilities(&name, &src),
        );
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
    for (name, src) in modules() {
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
    // Each registered module is one or more whole files of shaders/ in a row (a base file and
    // its tail), and every file is part of some module.
    let files = shader_files();
    let mut used = BTreeSet::new();
    for (name, raw) in kiln::shaders::SHADERS {
        let mut rest = *raw;
        while !rest.is_empty() {
            let Some((file, text)) = files.iter().find(|(_, t)| rest.starts_with(t.as_str()))
            else {
                panic!("module {name}: its source is not made of shaders/ files");
            };
            used.insert(file.clone());
            rest = &rest[text.len()..];
        }
    }
    let all: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(all, used, "shaders/ files and shaders::SHADERS disagree");
    // A module named like a file holds that file.
    for (name, src) in &files {
        if let Some((_, raw)) = kiln::shaders::SHADERS.iter().find(|(n, _)| n == name) {
            assert!(
                raw.contains(src.as_str()),
                "{name}: registry holds a different source"
            );
        }
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
    let registered: BTreeSet<String> = kiln::shaders::LIBRARY
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(
        files, registered,
        "shaders/lib and shaders::LIBRARY disagree"
    );
    for (name, _) in kiln::shaders::LIBRARY {
        let directive = format!("// kiln:include {name}");
        let users = kiln::shaders::SHADERS
            .iter()
            .filter(|(_, s)| s.lines().any(|l| l.trim() == directive))
            .count();
        assert!(users > 0, "library piece {name} is included by no shader");
    }
    let err = kiln::shaders::expand_includes("// kiln:include nothing_here\n").unwrap_err();
    assert!(err.contains("nothing_here"), "{err}");
}
