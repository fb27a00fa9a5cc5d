//! Every shader module the crate compiles (`kernels::SHADERS`: one WGSL file of shaders/, or a
//! file with a tail appended) parses and validates with naga, needs no GPU, stays within
//! WebGPU's default compute limits, and is made of the files in shaders/, all of them used.

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
            let src = std::fs::read_to_string(&p).expect("readable shader");
            (name, src)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no shaders found in {}", dir.display());
    files
}

/// The registered modules, as the crate compiles them.
fn modules() -> Vec<(String, String)> {
    kiln::kernels::SHADERS
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

/// What a module may use: modules named `*_sg` use subgroup operations, which kiln compiles
/// only on adapters with the SUBGROUP feature; every other module must do without.
fn capabilities(name: &str) -> naga::valid::Capabilities {
    if name.ends_with("_sg") {
        naga::valid::Capabilities::SUBGROUP
    } else {
        naga::valid::Capabilities::empty()
    }
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
        let mut validator =
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities(&name));
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
    for (name, src) in modules() {
        let mut rest = src.as_str();
        while !rest.is_empty() {
            let Some((file, text)) = files.iter().find(|(_, t)| rest.starts_with(t.as_str()))
            else {
                panic!("module {name}: its source is not made of shaders/ files");
            };
            used.insert(file.clone());
            rest = &rest[text.len()..];
        }
    }
    let all: BTreeSet<String> = files.into_iter().map(|(n, _)| n).collect();
    assert_eq!(all, used, "shaders/ files and kernels::SHADERS disagree");
    // A module named like a file holds that file.
    for (name, src) in shader_files() {
        if let Some(reg) = kiln::kernels::shader_source(&name) {
            assert!(
                reg.contains(src.as_str()),
                "{name}: registry holds a different source"
            );
        }
    }
}
