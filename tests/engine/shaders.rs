//! Every shader module the crate compiles (`shaders::SHADERS`: one WGSL file of shaders/, or a
//! file with a tail appended, with its `// kiln:include` library pieces from shaders/lib/
//! expanded) parses and validates with naga, needs no GPU, stays within WebGPU's default
//! compute limits, and is made of the files in shaders/, all of them used; every library piece
//! is registered and used. Every kernel spec of `kernels::registry` agrees with its entry point
//! (the uniform `Params` struct's size and each field's name, offset, size and scalar type; the
//! bindings a launch makes; the override constants), every entry point has a spec, and no
//! source outside the registry builds a launch by hand.

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

/// The scalar type at the bottom of a WGSL type (`u32` for `array<vec4<u32>, 2>`), as Rust
/// spells it.
fn scalar_name(module: &naga::Module, ty: naga::Handle<naga::Type>) -> String {
    let scalar = |s: naga::Scalar| match (s.kind, s.width) {
        (naga::ScalarKind::Uint, 4) => "u32".to_string(),
        (naga::ScalarKind::Sint, 4) => "i32".to_string(),
        (naga::ScalarKind::Float, 4) => "f32".to_string(),
        other => format!("{other:?}"),
    };
    match &module.types[ty].inner {
        naga::TypeInner::Scalar(s) => scalar(*s),
        naga::TypeInner::Vector { scalar: s, .. } => scalar(*s),
        naga::TypeInner::Array { base, .. } => scalar_name(module, *base),
        other => format!("{other:?}"),
    }
}

/// The scalar type of a Rust field type as written: `u32`, `[u32; 8]`.
fn rust_scalar(ty: &str) -> &str {
    ty.trim_start_matches('[')
        .split(';')
        .next()
        .unwrap_or(ty)
        .trim()
}

/// Differences between a WGSL uniform struct and the Rust struct a launch writes into it.
fn layout_mismatches(
    module: &naga::Module,
    ty: naga::Handle<naga::Type>,
    rust: &kiln::kernels::registry::ParamsLayout,
) -> Vec<String> {
    let naga::TypeInner::Struct { members, span } = &module.types[ty].inner else {
        return vec!["the uniform at binding 0 is not a struct".into()];
    };
    let mut out = Vec::new();
    if *span as usize != rust.size {
        out.push(format!(
            "WGSL struct is {span} bytes, {} is {}",
            rust.name, rust.size
        ));
    }
    let wgsl: Vec<(String, usize, usize, String)> = members
        .iter()
        .map(|m| {
            (
                m.name.clone().unwrap_or_default(),
                m.offset as usize,
                module.types[m.ty].inner.size(module.to_ctx()) as usize,
                scalar_name(module, m.ty),
            )
        })
        .collect();
    let ours: Vec<(String, usize, usize, String)> = rust
        .fields
        .iter()
        .map(|(n, o, s, t)| (n.to_string(), *o, *s, rust_scalar(t).to_string()))
        .collect();
    if wgsl != ours {
        out.push(format!(
            "fields (name, offset, size, scalar) differ:\n    WGSL: {wgsl:?}\n    {}: {ours:?}",
            rust.name
        ));
    }
    out
}

#[test]
fn every_kernel_spec_matches_its_shader_params_and_bindings() {
    let kernels = kiln::kernels::registry::KERNELS;
    assert!(!kernels.is_empty());
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for k in kernels {
        let what = format!("{}::{}", k.shader, k.entry);
        if !seen.insert(what.clone()) {
            failures.push(format!("{what}: listed twice"));
        }
        // The executor copies each launch's parameters into a 256-byte uniform slot, as words.
        if k.params.size > 256 || k.params.size % 4 != 0 {
            failures.push(format!(
                "{what}: {} is {} bytes (at most 256, a multiple of 4)",
                k.params.name, k.params.size
            ));
        }
        let Some(src) = kiln::shaders::shader_source(k.shader) else {
            failures.push(format!("{what}: no such shader"));
            continue;
        };
        let module = naga::front::wgsl::parse_str(src).expect("parses");
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            capabilities(k.shader, src),
        )
        .validate(&module)
        .expect("validates");
        let Some(ep) = module.entry_points.iter().position(|e| e.name == k.entry) else {
            failures.push(format!("{what}: no such entry point"));
            continue;
        };
        let used = info.get_entry_point(ep);
        let mut uniform = false;
        for (h, var) in module.global_variables.iter() {
            let Some(rb) = &var.binding else { continue };
            if used[h].is_empty() {
                continue;
            }
            let name = var.name.clone().unwrap_or_default();
            let b = rb.binding as usize;
            let want = if rb.group != 0 {
                "nothing (kiln binds group 0 only)"
            } else if b == 0 {
                "the uniform params"
            } else if b <= k.reads {
                "read-only storage"
            } else if b <= k.reads + k.writes {
                "read_write storage"
            } else {
                "nothing (past the launch's reads and writes)"
            };
            let got = match var.space {
                naga::AddressSpace::Uniform => "the uniform params",
                naga::AddressSpace::Storage { access } => {
                    if access.contains(naga::StorageAccess::STORE) {
                        "read_write storage"
                    } else {
                        "read-only storage"
                    }
                }
                _ => "another kind of resource",
            };
            if got != want {
                failures.push(format!(
                    "{what}: `{name}` at @group({}) @binding({b}) is {got}, the launch binds {want} \
                     ({} reads, {} writes)",
                    rb.group, k.reads, k.writes
                ));
            }
            if got == want && b == 0 {
                uniform = true;
                for m in layout_mismatches(&module, var.ty, &k.params) {
                    failures.push(format!("{what}: {m}"));
                }
            }
        }
        if !uniform {
            failures.push(format!("{what}: reads no uniform params at binding 0"));
        }
        for c in k.constants {
            if !module
                .overrides
                .iter()
                .any(|(_, o)| o.name.as_deref() == Some(*c))
            {
                failures.push(format!("{what}: no override constant {c}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "kernel specs disagree with their shaders:\n{}",
        failures.join("\n")
    );
}

/// Text of `src` with line comments removed (enough for the scan below: kiln has no block
/// comments and no `//` inside these patterns' strings).
fn code_only(src: &str) -> String {
    src.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn kernels_build_launches_only_through_the_registry() {
    // Files allowed to build untyped launches: the registry itself, the legacy helpers' own
    // definitions, the graph's definition of `Launch`, and the benchmark kernels that move to
    // the binary (to be converted there).
    const ALLOWED: &[&str] = &[
        "src/kernels/registry.rs",
        "src/kernels/mod.rs",
        "src/graph/mod.rs",
    ];
    const UNTYPED: &[&str] = &[
        "launch_multi(",
        "put8(",
        "kernels::launch(",
        ".key.constants.push(",
        ".params.push(",
    ];
    // Fields of a launch that only the registry may set.
    const ASSIGNED: &[&str] = &[
        ".key.entry=",
        ".key.reads=",
        ".key.writes=",
        ".key.shader=",
        ".key.constants=",
        ".params=",
        ".params[",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("readable dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 20, "found too few sources under src/");
    let mut failures = Vec::new();
    for p in files {
        let rel = p
            .strip_prefix(root)
            .expect("under the root")
            .to_string_lossy()
            .replace('\\', "/");
        if ALLOWED.contains(&rel.as_str()) {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&p).expect("readable source"));
        for pat in UNTYPED {
            if code.contains(pat) {
                failures.push(format!("{rel}: `{pat}`"));
            }
        }
        let compact: String = code.split_whitespace().collect();
        for pat in ASSIGNED {
            if compact
                .match_indices(pat)
                .any(|(i, _)| !compact[i + pat.len()..].starts_with('='))
            {
                failures.push(format!("{rel}: `{pat}`"));
            }
        }
        // A struct literal `Launch { .. }` (not a return type `-> Launch {`).
        if compact
            .match_indices("Launch{")
            .any(|(i, _)| !compact[..i].ends_with("->") && !compact[..i].ends_with("struct"))
        {
            failures.push(format!("{rel}: a `Launch {{ .. }}` literal"));
        }
        // The typed `launch(&SPEC, ...)` takes a spec; the untyped one took a shader name.
        if compact.contains("launch(\"") {
            failures.push(format!("{rel}: `launch(\"...` with a shader name"));
        }
    }
    assert!(
        failures.is_empty(),
        "launches built outside src/kernels/registry.rs (declare a params struct and a spec \
         there, and call registry::launch):\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_entry_point_of_every_shader_has_a_kernel_spec() {
    let specified: BTreeSet<(&str, &str)> = kiln::kernels::registry::KERNELS
        .iter()
        .map(|k| (k.shader, k.entry))
        .collect();
    let mut missing = Vec::new();
    for (name, src) in modules() {
        let module = naga::front::wgsl::parse_str(&src).expect("parses");
        for ep in &module.entry_points {
            // A subgroup build (`<family>_sg`) carries the family's other entry points unchanged;
            // the family's spec covers those.
            let family = name.strip_suffix("_sg").unwrap_or(&name);
            if !specified.contains(&(name.as_str(), ep.name.as_str()))
                && !specified.contains(&(family, ep.name.as_str()))
            {
                missing.push(format!("{name}::{}", ep.name));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "entry points with no spec in kernels/registry.rs: {missing:?}"
    );
}
