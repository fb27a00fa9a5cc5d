//! The library's modules layer one way: a module may use modules of its own layer and of the
//! layers below it, never above. The layers, lowest first, are listed in [`LAYERS`]; the one
//! allowed exception is the tie between `tensor` and `autograd` that every engine has (a tensor
//! carries its gradient record, and the record holds tensors).
//!
//! The check reads the sources (no GPU): every `crate::<module>` path outside comments, every
//! name in a `use crate::{...}` group, and names re-exported at the crate root (`crate::Tensor`
//! is `tensor`). A module or root name missing from [`LAYERS`] is itself a failure, so a new
//! module has to be placed.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first. Modules in one layer may use each other.
const LAYERS: &[&[&str]] = &[
    // basic types and plumbing
    &["error", "shape", "dtype", "fsio"],
    // what ops compute (op enums, the fusable form, window attributes) and the shader registry
    &["ir", "shaders"],
    // f64 CPU references of every kernel
    &["reference"],
    // the runtime: device, caches, buffer pool
    &["context"],
    // recorded ops: Node, Kernel, Launch, Storage
    &["graph"],
    // realization: collect, plan, fuse, encode, submit
    &["executor"],
    // the tensor handle and reverse-mode autodiff (the one tie)
    &["tensor", "autograd"],
    // the Rust side of every kernel, as tensor methods
    &["kernels"],
    // datasets, optimizers, then layers and models
    &["data"],
    &["optim"],
    &["nn"],
    // the browser's bindings, the conformance runner it includes from src/cli/, test hooks
    &["web", "conformance", "testing"],
];

/// Names that resolve without a module (standard prelude paths that follow `crate::`).
const ROOT_ITEMS_IGNORED: &[&str] = &["self"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments (line comments, doc comments, block comments); string
/// literals are kept, which is harmless for the paths looked for.
fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let b = src.as_bytes();
    let (mut i, mut depth, mut in_str) = (0, 0usize, false);
    while i < b.len() {
        if depth == 0 && !in_str && b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if !in_str && b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
            continue;
        }
        if depth > 0 {
            if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                depth -= 1;
                i += 2;
            } else {
                if b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            continue;
        }
        if b[i] == b'"' && (i == 0 || b[i - 1] != b'\\') && (i == 0 || b[i - 1] != b'\'') {
            in_str = !in_str;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Root re-exports of `src/lib.rs`: `pub use module::...::Name;` or `pub use module::{A, B};`
/// give each name its module.
fn root_exports(lib: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for stmt in strip_comments(lib).split(';') {
        let s = stmt.trim();
        let Some(path) = s.strip_prefix("pub use ") else {
            continue;
        };
        let module = path.split("::").next().unwrap_or("").trim().to_string();
        let names: Vec<&str> = match (path.find('{'), path.rfind('}')) {
            (Some(a), Some(b)) => path[a + 1..b].split(',').collect(),
            _ => vec![path.rsplit("::").next().unwrap_or("")],
        };
        for n in names {
            let n = n.trim().rsplit("::").next().unwrap_or("").trim();
            let n = n.split(" as ").last().unwrap_or(n).trim();
            if !n.is_empty() && n != "self" {
                map.insert(n.to_string(), module.clone());
            }
        }
    }
    map
}

/// The first path segments a file reaches through `crate::`, with their line numbers.
fn crate_refs(src: &str) -> Vec<(usize, String)> {
    let code = strip_comments(src);
    let mut refs = Vec::new();
    let line_of = |pos: usize| code[..pos].matches('\n').count() + 1;
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut at = 0;
    while let Some(k) = code[at..].find("crate::") {
        let pos = at + k;
        let after = &code[pos + "crate::".len()..];
        // `crate::` must start a path (not `kiln_crate::` or a longer identifier).
        let prev = code[..pos].chars().last();
        if prev.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            at = pos + 1;
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            // `crate::{a::b, C, d::{e, f}}`: the first segment of each top-level item.
            let (mut depth, mut item) = (0, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        refs.push((line_of(pos), ident(item.trim())));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            if !item.trim().is_empty() {
                refs.push((line_of(pos), ident(item.trim())));
            }
        } else {
            refs.push((line_of(pos), ident(after)));
        }
        at = pos + 1;
    }
    refs.retain(|(_, n)| !n.is_empty());
    refs
}

#[test]
fn no_module_uses_a_module_of_a_higher_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = fs::read_to_string(root.join("lib.rs")).expect("src/lib.rs");
    let exports = root_exports(&lib);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&root).expect("under src");
        let first = rel.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // The crate root and the binary (main.rs and its cli/ modules) sit above every layer.
        if module == "lib" || module == "main" || module == "cli" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            problems.push(format!(
                "{}: module `{module}` is in no layer",
                rel.display()
            ));
            continue;
        };
        let src = fs::read_to_string(file).expect("read source");
        for (line, name) in crate_refs(&src) {
            if ROOT_ITEMS_IGNORED.contains(&name.as_str()) {
                continue;
            }
            let target = if name.starts_with(|c: char| c.is_uppercase()) {
                match exports.get(&name) {
                    Some(m) => m.clone(),
                    None => {
                        problems.push(format!(
                            "{}:{line}: `crate::{name}` is not a root re-export",
                            rel.display()
                        ));
                        continue;
                    }
                }
            } else {
                name.clone()
            };
            if target == module {
                continue;
            }
            let Some(theirs) = layer_of(&target) else {
                problems.push(format!(
                    "{}:{line}: `crate::{name}` names module `{target}`, which is in no layer",
                    rel.display()
                ));
                continue;
            };
            let tie = matches!(
                (module.as_str(), target.as_str()),
                ("autograd", "tensor") | ("tensor", "autograd")
            );
            if theirs > own && !tie {
                problems.push(format!(
                    "{}:{line}: `{module}` (layer {own}) uses `{target}` (layer {theirs}) \
                     through `crate::{name}`",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} layering problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_reference_scanner_sees_paths_groups_and_skips_comments() {
    let src = "use crate::a::b;\n// crate::hidden\nuse crate::{c, D, e::{f, g}};\n\
               let x = crate::h::i(); /* crate::j */ my_crate::k;";
    let names: Vec<String> = crate_refs(src).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["a", "c", "D", "e", "h"]);
    let exports = root_exports("pub use tensor::Tensor;\npub use ir::{BinaryOp, UnaryOp};\n");
    assert_eq!(exports.get("Tensor").map(String::as_str), Some("tensor"));
    assert_eq!(exports.get("UnaryOp").map(String::as_str), Some("ir"));
}
