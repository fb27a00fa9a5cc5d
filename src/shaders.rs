//! The shader registry: every WGSL file kiln compiles, its shared library pieces, and the key
//! that names one compiled kernel. Shaders are compiled into the binary, so kiln needs no files
//! at run time (and works the same in a browser).

/// Key of a cached compute pipeline: the shader file, its entry point, and the values of its
/// `override` constants (the specialization). Shapes never appear here: they travel as uniforms.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    pub shader: &'static str,
    pub entry: &'static str,
    pub constants: Vec<(&'static str, u32)>,
    pub reads: usize,
    pub writes: usize,
}

/// Every shader file, by name. Shaders are compiled into the binary, so kiln needs no files at
/// run time (and works the same in a browser).
pub const SHADERS: &[(&str, &str)] = &[
    ("activation", include_str!("../shaders/activation.wgsl")),
    // The attention kernels with one of two tails: plain row loads, or loads shared through
    // subgroups (for adapters with 8-wide subgroups).
    (
        "attention",
        concat!(
            include_str!("../shaders/attention.wgsl"),
            include_str!("../shaders/attention_plain.wgsl")
        ),
    ),
    (
        "attention_sg",
        concat!(
            include_str!("../shaders/attention.wgsl"),
            include_str!("../shaders/attention_sg.wgsl")
        ),
    ),
    ("batch_norm", include_str!("../shaders/batch_norm.wgsl")),
    ("binary", include_str!("../shaders/binary.wgsl")),
    ("ceiling", include_str!("../shaders/ceiling.wgsl")),
    ("conv2d", include_str!("../shaders/conv2d.wgsl")),
    // conv2d with the weights of each step shared through subgroups (8-wide subgroups only).
    (
        "conv2d_sg",
        concat!(
            include_str!("../shaders/conv2d.wgsl"),
            include_str!("../shaders/conv2d_sg.wgsl")
        ),
    ),
    (
        "cross_entropy",
        include_str!("../shaders/cross_entropy.wgsl"),
    ),
    ("dropout", include_str!("../shaders/dropout.wgsl")),
    ("embedding", include_str!("../shaders/embedding.wgsl")),
    ("fill", include_str!("../shaders/fill.wgsl")),
    ("layer_norm", include_str!("../shaders/layer_norm.wgsl")),
    ("matmul", include_str!("../shaders/matmul.wgsl")),
    ("matmul_coop", include_str!("../shaders/matmul_coop.wgsl")),
    ("matmul_f16", include_str!("../shaders/matmul_f16.wgsl")),
    ("matmul_sg", include_str!("../shaders/matmul_sg.wgsl")),
    ("optim", include_str!("../shaders/optim.wgsl")),
    ("permute", include_str!("../shaders/permute.wgsl")),
    ("pool", include_str!("../shaders/pool.wgsl")),
    ("random", include_str!("../shaders/random.wgsl")),
    ("recurrent", include_str!("../shaders/recurrent.wgsl")),
    ("reduce", include_str!("../shaders/reduce.wgsl")),
    ("softmax", include_str!("../shaders/softmax.wgsl")),
    ("unary", include_str!("../shaders/unary.wgsl")),
    ("arg_reduce", include_str!("../shaders/arg_reduce.wgsl")),
    ("clamp", include_str!("../shaders/clamp.wgsl")),
    ("compare", include_str!("../shaders/compare.wgsl")),
    ("concat", include_str!("../shaders/concat.wgsl")),
    ("cumsum", include_str!("../shaders/cumsum.wgsl")),
    ("gather", include_str!("../shaders/gather.wgsl")),
    ("scatter_add", include_str!("../shaders/scatter_add.wgsl")),
    ("slice", include_str!("../shaders/slice.wgsl")),
    ("where_select", include_str!("../shaders/where_select.wgsl")),
];

/// The WGSL library: each piece of math that several kernels share, written once, by name.
/// WGSL has no include of its own, so a shader (or a piece) pulls one in with a line
/// `// kiln:include <name>`, which [`expand_includes`] replaces. The op pieces hold one small
/// function per op, so that a kernel the executor generates includes only the groups it uses
/// and its compiler sees no switch over every op.
pub const LIBRARY: &[(&str, &str)] = &[
    (
        "activation_ops",
        include_str!("../shaders/lib/activation_ops.wgsl"),
    ),
    ("binary_ops", include_str!("../shaders/lib/binary_ops.wgsl")),
    ("float", include_str!("../shaders/lib/float.wgsl")),
    ("index", include_str!("../shaders/lib/index.wgsl")),
    ("philox", include_str!("../shaders/lib/philox.wgsl")),
    ("sigmoid", include_str!("../shaders/lib/sigmoid.wgsl")),
    ("tanh", include_str!("../shaders/lib/tanh.wgsl")),
    ("unary_ops", include_str!("../shaders/lib/unary_ops.wgsl")),
];

/// The directive that pulls a [`LIBRARY`] piece into a shader.
const INCLUDE: &str = "// kiln:include ";

/// `src` with every `// kiln:include <name>` line replaced by the library piece `name`. Pieces
/// may include pieces; each piece appears once in the result, where it is first included (WGSL
/// lets a function be called above its declaration), so two pieces may share a third.
///
/// Errors: the name of a piece that is not in [`LIBRARY`].
pub fn expand_includes(src: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(src.len() + 2048);
    let mut included: Vec<&str> = Vec::new();
    expand_into(src, &mut out, &mut included)?;
    Ok(out)
}

fn expand_into(
    src: &str,
    out: &mut String,
    included: &mut Vec<&'static str>,
) -> std::result::Result<(), String> {
    for line in src.lines() {
        match line.trim().strip_prefix(INCLUDE) {
            Some(name) => {
                let name = name.trim();
                let &(name, text) = LIBRARY
                    .iter()
                    .find(|(n, _)| *n == name)
                    .ok_or_else(|| format!("unknown WGSL library piece `{name}`"))?;
                if !included.contains(&name) {
                    // Marked before expanding, so a cycle of includes ends.
                    included.push(name);
                    expand_into(text, out, included)?;
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(())
}

/// The WGSL source of shader `name`, with its library pieces expanded (once per process).
/// `None` if there is no such shader, or if it includes a piece that does not exist (the
/// shader tests rule that out).
pub fn shader_source(name: &str) -> Option<&'static str> {
    static EXPANDED: std::sync::OnceLock<Vec<Option<String>>> = std::sync::OnceLock::new();
    let expanded = EXPANDED.get_or_init(|| {
        SHADERS
            .iter()
            .map(|(_, s)| expand_includes(s).ok())
            .collect()
    });
    let k = SHADERS.iter().position(|(n, _)| *n == name)?;
    expanded.get(k)?.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[test]
    fn includes_nest_and_each_piece_appears_once() {
        // unary_ops includes sigmoid and tanh; sigmoid is also included directly, twice.
        let src = "// kiln:include sigmoid\n// kiln:include unary_ops\n  // kiln:include sigmoid\n";
        let out = expand_includes(src).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(count(&out, "fn stable_sigmoid("), 1, "{out}");
        assert_eq!(count(&out, "fn stable_tanh("), 1, "{out}");
        assert_eq!(count(&out, "fn unary_sigmoid("), 1, "{out}");
        assert!(!out.contains("kiln:include"), "{out}");
        // binary_ops pulls in float through its own include.
        let out = expand_includes("// kiln:include binary_ops\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(count(&out, "fn f32_from_bits("), 1, "{out}");
    }

    #[test]
    fn every_library_piece_expands_and_unknown_pieces_are_named() {
        for (name, text) in LIBRARY {
            expand_includes(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        match expand_includes("x\n// kiln:include no_such_piece\n") {
            Err(e) => assert!(e.contains("no_such_piece"), "{e}"),
            Ok(out) => panic!("an unknown piece expanded to:\n{out}"),
        }
    }
}
