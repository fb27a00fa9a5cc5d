//! The conformance runner behind `kiln conformance DIR`: operator cases derived from the ONNX
//! reference implementation (format: `../shared/conformance/README.md`), run through kiln's
//! public ops, with gradient cases run through [`kiln::autograd`]. The same format carries
//! tests/data/conformance-extra (numpy-made cases for the comparison, selection and indexing
//! ops), where ONNX booleans are stored as f32 0/1 (cases marked `_bool_as_f32`) and integer
//! tensors as I64: index inputs go to kiln as i32, and I64 expected values (ArgMax, ArgMin)
//! must match kiln's i32 results exactly.
//!
//! A case passes when every output and gradient has exactly the expected shape and every
//! element satisfies `|got - exp| <= atol + rtol * |exp|` (in f64). A case that cannot be run
//! (an unknown op, an unsupported attribute, a missing tensor) is a failure with its reason,
//! never a skip. Nothing here depends on the shapes of a particular set.
//!
//! The core works on bytes and runs on the web too ([`Suite::from_bytes`],
//! [`run_case_async`]); reading a folder and the blocking forms are native only.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Map, Value};

use anyhow::{Context as _, Result};
use kiln::{Context, DType, Tensor};

/// A host-side tensor from the safetensors file.
#[derive(Clone, Debug)]
pub enum HostTensor {
    /// f32 data and shape.
    F32(Vec<f32>, Vec<usize>),
    /// i64 data and shape (labels, axes, shapes, step counts).
    I64(Vec<i64>, Vec<usize>),
}

/// One node of a `"Graph"` case.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphNode {
    /// ONNX op type.
    pub op: String,
    /// Input value names (empty string = omitted optional input).
    pub inputs: Vec<String>,
    /// Output value names.
    pub outputs: Vec<String>,
    /// ONNX attributes.
    pub attrs: Map<String, Value>,
}

/// One case of the set, as `cases.json` spells it (`../shared/conformance/README.md`). Every
/// field the format always writes is required; a missing one, or one the format does not
/// know, makes the file malformed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique name.
    pub name: String,
    /// ONNX op type, or `"Graph"`.
    pub op: String,
    /// `""` (ai.onnx) or `"ai.onnx.preview.training"`.
    pub domain: String,
    /// The domain's opset version the expected values follow (informational).
    #[allow(dead_code)]
    pub opset: u32,
    /// ONNX attributes (keys starting with `_` are the set's own annotations).
    pub attrs: Map<String, Value>,
    /// Input names in ONNX input order.
    pub inputs: Vec<String>,
    /// Expected output names in ONNX output order.
    pub outputs: Vec<String>,
    /// Gradient cases: input name -> expected gradient name.
    #[serde(default)]
    pub grads: BTreeMap<String, String>,
    /// The cotangent of `outputs[0]` (gradient cases).
    #[serde(default)]
    pub upstream: Option<String>,
    /// Default tolerance.
    pub rtol: f64,
    /// Default tolerance.
    pub atol: f64,
    /// Per-tensor tolerance overrides, `(rtol, atol)`.
    #[serde(default)]
    pub tol: HashMap<String, (f64, f64)>,
    /// The nodes of a `"Graph"` case.
    #[serde(default)]
    pub graph: Vec<GraphNode>,
    /// Other implementations' results kept for information (output name -> tensor name).
    #[serde(default)]
    #[allow(dead_code)]
    pub alt_expected: BTreeMap<String, String>,
    /// How the expected values were made (informational).
    #[allow(dead_code)]
    pub oracle: String,
}

/// `cases.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    /// The format version; this runner reads version 1.
    format: u32,
    /// The tool versions and seed that made the set (informational).
    #[allow(dead_code)]
    generator: Map<String, Value>,
    cases: Vec<Case>,
}

/// A loaded set of cases and their tensors.
pub struct Suite {
    /// The cases, in file order.
    pub cases: Vec<Case>,
    tensors: HashMap<String, HostTensor>,
}

/// A malformed set, an unsupported op or attribute: the reason, as an error.
fn bad(reason: impl Into<String>) -> anyhow::Error {
    anyhow::Error::msg(reason.into())
}

impl Suite {
    /// Parses `cases.json` and `cases.safetensors` from memory; rejects malformed files with
    /// the reason.
    pub fn from_bytes(cases_json: &[u8], tensors: &[u8]) -> Result<Suite> {
        let file: CasesFile =
            serde_json::from_slice(cases_json).context("cases.json is not a valid case list")?;
        if file.format != 1 {
            return Err(bad(format!(
                "cases.json has format {}, this runner reads format 1",
                file.format
            )));
        }
        let cases = file.cases;
        let st = safetensors::SafeTensors::deserialize(tensors)
            .context("cases.safetensors is corrupt")?;
        let mut map = HashMap::new();
        for (name, view) in st.iter() {
            let shape = view.shape().to_vec();
            let raw = view.data();
            let t = match view.dtype() {
                safetensors::Dtype::F32 => HostTensor::F32(
                    raw.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                    shape,
                ),
                safetensors::Dtype::I64 => HostTensor::I64(
                    raw.chunks_exact(8)
                        .map(|b| {
                            i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                        })
                        .collect(),
                    shape,
                ),
                other => return Err(bad(format!("tensor {name}: unsupported dtype {other:?}"))),
            };
            map.insert(name.to_string(), t);
        }
        Ok(Suite {
            cases,
            tensors: map,
        })
    }

    /// Reads `dir/cases.json` and `dir/cases.safetensors`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &std::path::Path) -> Result<Suite> {
        let read = |f: &str| {
            let path = dir.join(f);
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
        };
        Suite::from_bytes(&read("cases.json")?, &read("cases.safetensors")?)
            .with_context(|| format!("the conformance set in {}", dir.display()))
    }

    fn tensor(&self, case: &str, name: &str) -> Result<&HostTensor> {
        let key = format!("{case}/{name}");
        self.tensors
            .get(&key)
            .ok_or_else(|| bad(format!("tensor {key} is missing from cases.safetensors")))
    }
}

/// The verdict on one case.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Case name.
    pub case: String,
    /// Every mismatch or the reason the case could not run; empty when it passed.
    pub failures: Vec<String>,
}

impl Verdict {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A value flowing through an op: a GPU tensor, or host integers (axes, shapes, labels, T).
#[derive(Clone, Debug)]
enum Val {
    T(Tensor),
    /// A one-element float input, with its value kept on the host (optimizer rates are read
    /// without a GPU round trip, which the browser could not wait for here).
    S(Tensor, f32),
    I(Vec<i64>, Vec<usize>),
}

impl Val {
    fn tensor(&self, op: &str) -> Result<&Tensor> {
        match self {
            Val::T(t) | Val::S(t, _) => Ok(t),
            Val::I(..) => Err(bad(format!("{op}: expected a float tensor, got integers"))),
        }
    }

    fn ints(&self, op: &str) -> Result<&[i64]> {
        match self {
            Val::I(v, _) => Ok(v),
            Val::T(_) | Val::S(..) => Err(bad(format!("{op}: expected an integer tensor"))),
        }
    }
}

/// Reads ONNX attributes, remembering which were consumed so leftovers can be refused.
struct Attrs<'a> {
    op: &'a str,
    map: &'a Map<String, Value>,
    used: std::cell::RefCell<Vec<String>>,
}

impl<'a> Attrs<'a> {
    fn new(op: &'a str, map: &'a Map<String, Value>) -> Self {
        Attrs {
            op,
            map,
            used: Default::default(),
        }
    }

    fn raw(&self, k: &str) -> Option<&'a Value> {
        self.used.borrow_mut().push(k.to_string());
        self.map.get(k)
    }

    fn int(&self, k: &str, default: i64) -> Result<i64> {
        match self.raw(k) {
            None => Ok(default),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| bad(format!("{}: attribute {k} is not an integer", self.op))),
        }
    }

    fn float(&self, k: &str, default: f32) -> Result<f32> {
        match self.raw(k) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .map(|x| x as f32)
                .ok_or_else(|| bad(format!("{}: attribute {k} is not a number", self.op))),
        }
    }

    fn opt_float(&self, k: &str) -> Result<Option<f32>> {
        match self.raw(k) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|x| Some(x as f32))
                .ok_or_else(|| bad(format!("{}: attribute {k} is not a number", self.op))),
        }
    }

    fn string(&self, k: &str, default: &str) -> Result<String> {
        match self.raw(k) {
            None => Ok(default.to_string()),
            Some(v) => v
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(format!("{}: attribute {k} is not a string", self.op))),
        }
    }

    fn ints(&self, k: &str) -> Result<Option<Vec<i64>>> {
        match self.raw(k) {
            None => Ok(None),
            Some(v) => v
                .as_array()
                .and_then(|a| a.iter().map(Value::as_i64).collect::<Option<Vec<i64>>>())
                .map(Some)
                .ok_or_else(|| {
                    bad(format!(
                        "{}: attribute {k} is not a list of integers",
                        self.op
                    ))
                }),
        }
    }

    /// Refuses any attribute that was not read (kiln would silently ignore its meaning).
    fn finish(&self) -> Result<()> {
        let used = self.used.borrow();
        for k in self.map.keys() {
            if !k.starts_with('_') && !used.iter().any(|u| u == k) {
                return Err(bad(format!("{}: unsupported attribute {k}", self.op)));
            }
        }
        Ok(())
    }
}

fn usizes(op: &str, what: &str, v: &[i64]) -> Result<Vec<usize>> {
    v.iter()
        .map(|&x| usize::try_from(x).map_err(|_| bad(format!("{op}: negative {what} {x}"))))
        .collect()
}

fn pair(op: &str, what: &str, v: Option<Vec<i64>>, default: usize) -> Result<[usize; 2]> {
    match v {
        None => Ok([default; 2]),
        Some(v) => {
            let u = usizes(op, what, &v)?;
            match u.as_slice() {
                [a, b] => Ok([*a, *b]),
                _ => Err(bad(format!(
                    "{op}: {what} must have 2 values (2-D only), got {v:?}"
                ))),
            }
        }
    }
}

fn pads4(op: &str, v: Option<Vec<i64>>) -> Result<[usize; 4]> {
    match v {
        None => Ok([0; 4]),
        Some(v) => {
            let u = usizes(op, "pads", &v)?;
            match u.as_slice() {
                // ONNX order: [x1_begin, x2_begin, x1_end, x2_end] = [top, left, bottom, right].
                [t, l, b, r] => Ok([*t, *l, *b, *r]),
                _ => Err(bad(format!(
                    "{op}: pads must have 4 values (2-D only), got {v:?}"
                ))),
            }
        }
    }
}

fn no_auto_pad(op: &str, a: &Attrs) -> Result<()> {
    let ap = a.string("auto_pad", "NOTSET")?;
    if ap != "NOTSET" {
        return Err(bad(format!(
            "{op}: auto_pad {ap} is not supported (give pads)"
        )));
    }
    Ok(())
}

/// What an op's function gets: the op type, its attributes and its inputs by ONNX slot.
struct Call<'a> {
    op: &'a str,
    attrs: Attrs<'a>,
    inputs: &'a [Option<Val>],
}

impl Call<'_> {
    /// ONNX input slot `i`, which the op requires.
    fn input(&self, i: usize) -> Result<&Val> {
        self.inputs
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| bad(format!("{}: required input {i} is missing", self.op)))
    }

    /// Required float input `i`.
    fn t(&self, i: usize) -> Result<&Tensor> {
        self.input(i)?.tensor(self.op)
    }

    /// Optional float input `i`.
    fn opt_t(&self, i: usize) -> Result<Option<&Tensor>> {
        match self.inputs.get(i).and_then(Option::as_ref) {
            None => Ok(None),
            Some(v) => v.tensor(self.op).map(Some),
        }
    }

    /// Required integer (I64) input `i`.
    fn ints(&self, i: usize) -> Result<&[i64]> {
        self.input(i)?.ints(self.op)
    }

    /// Optional integer (I64) input `i`.
    fn opt_ints(&self, i: usize) -> Result<Option<&[i64]>> {
        match self.inputs.get(i).and_then(Option::as_ref) {
            None => Ok(None),
            Some(v) => v.ints(self.op).map(Some),
        }
    }

    /// Integer input `i` (I64 in the set) as the i32 index tensor kiln takes, made on the
    /// device of `like`.
    fn index_tensor(&self, i: usize, like: &Tensor) -> Result<Tensor> {
        let shape = match self.input(i)? {
            Val::I(_, s) => s,
            Val::T(_) | Val::S(..) => {
                return Err(bad(format!("{}: input {i} must be integers", self.op)))
            }
        };
        let v = self
            .ints(i)?
            .iter()
            .map(|&x| {
                i32::try_from(x)
                    .map_err(|_| bad(format!("{}: index {x} does not fit in i32", self.op)))
            })
            .collect::<Result<Vec<i32>>>()?;
        Ok(Tensor::from_slice(like.context(), &v, shape)?)
    }

    /// The `axis` attribute (`default` when absent, an error when absent and `None`).
    fn axis(&self, default: Option<i64>) -> Result<isize> {
        let v = match (self.attrs.raw("axis"), default) {
            (None, Some(d)) => d,
            (None, None) => return Err(bad(format!("{}: attribute axis is required", self.op))),
            (Some(_), _) => self.attrs.int("axis", 0)?,
        };
        isize::try_from(v).map_err(|_| bad(format!("{}: axis {v} is out of range", self.op)))
    }

    /// ONNX booleans (comparison outputs, Where's condition) are stored by the set as f32
    /// 0.0/1.0, which is what kiln computes with; a case must say so with `_bool_as_f32`,
    /// or it is refused rather than read in another convention.
    fn bool_as_f32(&self) -> Result<()> {
        match self.attrs.map.get("_bool_as_f32") {
            Some(Value::Bool(true)) => Ok(()),
            _ => Err(bad(format!(
                "{}: boolean tensors must be stored as f32 0/1 (attribute _bool_as_f32)",
                self.op
            ))),
        }
    }
}

/// One ONNX op run on kiln: reads its attributes and inputs, returns its outputs in ONNX order.
type OpFn = fn(&Call) -> Result<Vec<Tensor>>;

/// Every supported op, by (domain, op type).
const OPS: &[(&str, &str, OpFn)] = &[
    ("", "MatMul", matmul),
    ("", "Gemm", gemm),
    ("", "Relu", relu),
    ("", "Tanh", tanh),
    ("", "Sigmoid", sigmoid),
    ("", "Add", add),
    ("", "Sub", sub),
    ("", "Mul", mul),
    ("", "Div", div),
    ("", "Transpose", transpose),
    ("", "Reshape", reshape),
    ("", "Flatten", flatten),
    ("", "ReduceSum", reduce),
    ("", "ReduceMean", reduce),
    ("", "ReduceMax", reduce),
    ("", "Dropout", dropout),
    ("ai.onnx.preview.training", "Adam", adam),
    ("ai.onnx.preview.training", "Momentum", momentum),
    ("ai.onnx.preview.training", "Adagrad", adagrad),
    ("", "MaxPool", pool),
    ("", "AveragePool", pool),
    ("", "GlobalAveragePool", global_average_pool),
    ("", "LeakyRelu", leaky_relu),
    ("", "Gelu", gelu),
    ("", "Softmax", softmax),
    ("", "LogSoftmax", log_softmax),
    ("", "SoftmaxCrossEntropyLoss", softmax_cross_entropy_loss),
    ("", "LayerNormalization", layer_normalization),
    ("", "BatchNormalization", batch_normalization),
    ("", "RNN", recurrent),
    ("", "LSTM", recurrent),
    ("", "GRU", recurrent),
    ("", "Conv", conv),
    ("", "ConvTranspose", conv_transpose),
    ("", "Attention", attention),
    ("", "Equal", comparison),
    ("", "Less", comparison),
    ("", "LessOrEqual", comparison),
    ("", "Greater", comparison),
    ("", "GreaterOrEqual", comparison),
    ("", "Where", where_),
    ("", "Clip", clip),
    ("", "ArgMax", arg_reduce),
    ("", "ArgMin", arg_reduce),
    ("", "Concat", concat),
    ("", "Slice", slice),
    ("", "Gather", gather),
    ("", "GatherElements", gather),
    ("", "ScatterElements", scatter_elements),
    ("", "CumSum", cumsum),
];

/// Runs one ONNX op on kiln values. `inputs[i]` is ONNX input slot i (None = omitted).
/// Attributes the op did not read are refused.
fn apply(
    op: &str,
    domain: &str,
    attrs: &Map<String, Value>,
    inputs: &[Option<Val>],
) -> Result<Vec<Tensor>> {
    let (_, _, run) = OPS
        .iter()
        .find(|(d, o, _)| *d == domain && *o == op)
        .ok_or_else(|| bad(format!("op {op} (domain {domain:?}) is not supported")))?;
    let call = Call {
        op,
        attrs: Attrs::new(op, attrs),
        inputs,
    };
    let out = run(&call)?;
    call.attrs.finish()?;
    Ok(out)
}

/// `MatMul`.
fn matmul(call: &Call) -> Result<Vec<Tensor>> {
    Ok(vec![call.t(0)?.matmul(call.t(1)?)?])
}

/// `Gemm`.
fn gemm(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    let (ta, tb) = (a.int("transA", 0)? != 0, a.int("transB", 0)? != 0);
    let (alpha, beta) = (a.float("alpha", 1.0)?, a.float("beta", 1.0)?);
    let mut y = call.t(0)?.matmul_t(call.t(1)?, ta, tb)?;
    if alpha != 1.0 {
        y = y.mul_scalar(alpha)?;
    }
    if let Some(c) = call.opt_t(2)? {
        let c = if beta != 1.0 {
            c.mul_scalar(beta)?
        } else {
            c.clone()
        };
        y = y.add(&c)?;
    }
    Ok(vec![y])
}

/// `Relu`.
fn relu(call: &Call) -> Result<Vec<Tensor>> {
    Ok(vec![call.t(0)?.relu()?])
}

/// `Tanh`.
fn tanh(call: &Call) -> Result<Vec<Tensor>> {
    Ok(vec![call.t(0)?.tanh()?])
}

/// `Sigmoid`.
fn sigmoid(call: &Call) -> Result<Vec<Tensor>> {
    Ok(vec![call.t(0)?.sigmoid()?])
}

/// `Add`.
fn add(call: &Call) -> Result<Vec<Tensor>> {
    Ok(vec![call.t(0)?.add(call.t(1)?)?])
}

/// `Sub`.
fn sub(call: &Call) -> Result<Vec<Tensor>> {
    Ok(vec![call.t(0)?.sub(call.t(1)?)?])
}

/// `Mul`.
fn mul(call: &Call) -> Result<Vec<Tensor>> {
    Ok(vec![call.t(0)?.mul(call.t(1)?)?])
}

/// `Div`.
fn div(call: &Call) -> Result<Vec<Tensor>> {
    Ok(vec![call.t(0)?.div(call.t(1)?)?])
}

/// `Transpose`.
fn transpose(call: &Call) -> Result<Vec<Tensor>> {
    let op = call.op;
    let a = &call.attrs;
    let x = call.t(0)?;
    let perm = match a.ints("perm")? {
        Some(p) => usizes(op, "perm", &p)?,
        None => (0..x.rank()).rev().collect(),
    };
    Ok(vec![x.permute(&perm)?])
}

/// `Reshape`.
fn reshape(call: &Call) -> Result<Vec<Tensor>> {
    let op = call.op;
    let a = &call.attrs;
    let x = call.t(0)?;
    if a.int("allowzero", 0)? != 0 {
        return Err(bad("Reshape: allowzero=1 is not supported"));
    }
    let spec = call.input(1)?.ints(op)?;
    let mut shape = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            0 => shape.push(
                *x.shape()
                    .get(i)
                    .ok_or_else(|| bad("Reshape: 0 past the input rank"))?,
            ),
            -1 if infer.is_none() => {
                infer = Some(i);
                shape.push(1);
            }
            d if d > 0 => shape.push(d as usize),
            d => return Err(bad(format!("Reshape: invalid dimension {d}"))),
        }
    }
    if let Some(i) = infer {
        let known: usize = shape.iter().product();
        if known == 0 || x.numel() % known != 0 {
            return Err(bad(format!(
                "Reshape: cannot infer a dimension of {shape:?} from {:?}",
                x.shape()
            )));
        }
        shape[i] = x.numel() / known;
    }
    Ok(vec![x.reshape(&shape)?])
}

/// `Flatten`.
fn flatten(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    let x = call.t(0)?;
    let axis = a.int("axis", 1)?;
    let r = x.rank() as i64;
    let axis = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&axis) {
        return Err(bad(format!(
            "Flatten: axis {axis} out of range for rank {r}"
        )));
    }
    let outer: usize = x.shape()[..axis as usize].iter().product();
    Ok(vec![x.reshape(&[outer, x.numel() / outer.max(1)])?])
}

/// `ReduceSum`, `ReduceMean`, `ReduceMax`.
fn reduce(call: &Call) -> Result<Vec<Tensor>> {
    let op = call.op;
    let a = &call.attrs;
    let x = call.t(0)?;
    let keep = a.int("keepdims", 1)? != 0;
    let noop = a.int("noop_with_empty_axes", 0)? != 0;
    let axes: Vec<isize> = match call.inputs.get(1).and_then(Option::as_ref) {
        Some(v) => v.ints(op)?.iter().map(|&x| x as isize).collect(),
        None => Vec::new(),
    };
    let axes = if axes.is_empty() && !noop {
        (0..x.rank() as isize).collect()
    } else {
        axes
    };
    let rop = match op {
        "ReduceSum" => kiln::kernels::reduce::ReduceOp::Sum,
        "ReduceMean" => kiln::kernels::reduce::ReduceOp::Mean,
        _ => kiln::kernels::reduce::ReduceOp::Max,
    };
    Ok(vec![x.reduce(rop, &axes, keep)?])
}

/// `Dropout`.
fn dropout(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    a.int("seed", 0)?;
    if call.inputs.get(2).and_then(Option::as_ref).is_some() {
        return Err(bad(
            "Dropout: training_mode input is not supported by the runner",
        ));
    }
    Ok(vec![call.t(0)?.clone()])
}

/// The inputs every ONNX training-domain optimizer takes: the rate R (a one-element float),
/// the step count T, then `groups` groups of `n` tensors each (X, G, then the state).
struct OptimizerInputs<'c, 'a> {
    call: &'c Call<'a>,
    r: f32,
    step: i64,
    n: usize,
}

impl<'c, 'a> OptimizerInputs<'c, 'a> {
    fn new(call: &'c Call<'a>, groups: usize) -> Result<Self> {
        let op = call.op;
        let r = match call.input(0)? {
            Val::S(_, x) => *x,
            _ => return Err(bad(format!("{op}: R must be a one-element float input"))),
        };
        let step = *call
            .input(1)?
            .ints(op)?
            .first()
            .ok_or_else(|| bad(format!("{op}: empty T")))?;
        let n_in = call.inputs.len().saturating_sub(2);
        if n_in == 0 || !n_in.is_multiple_of(groups) {
            return Err(bad(format!(
                "{op}: {n_in} tensor inputs is not a multiple of {groups}"
            )));
        }
        Ok(OptimizerInputs {
            call,
            r,
            step,
            n: n_in / groups,
        })
    }

    /// Tensor `i` of group `g`.
    fn slot(&self, g: usize, i: usize) -> Result<&'c Tensor> {
        self.call.t(2 + g * self.n + i)
    }
}

/// `Adam` (training domain): outputs every updated X, then every V, then every H.
fn adam(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    let o = OptimizerInputs::new(call, 4)?;
    let (alpha, beta) = (a.float("alpha", 0.9)?, a.float("beta", 0.999)?);
    let eps = a.float("epsilon", 1e-6)?;
    let (nc, ncp) = (
        a.float("norm_coefficient", 0.0)?,
        a.float("norm_coefficient_post", 0.0)?,
    );
    let mut outs: [Vec<Tensor>; 3] = Default::default();
    for i in 0..o.n {
        let (x, v, h) = kiln::kernels::optim::adam_onnx(
            o.r,
            o.step,
            o.slot(0, i)?,
            o.slot(1, i)?,
            o.slot(2, i)?,
            o.slot(3, i)?,
            alpha,
            beta,
            eps,
            nc,
            ncp,
        )?;
        outs[0].push(x);
        outs[1].push(v);
        outs[2].push(h);
    }
    Ok(outs.into_iter().flatten().collect())
}

/// `Momentum` (training domain): outputs every updated X, then every V.
fn momentum(call: &Call) -> Result<Vec<Tensor>> {
    use kiln::kernels::optim::MomentumMode;
    let a = &call.attrs;
    let o = OptimizerInputs::new(call, 3)?;
    let (alpha, beta) = (a.float("alpha", 0.9)?, a.float("beta", 1.0)?);
    let mode = match a.string("mode", "standard")?.as_str() {
        "standard" => MomentumMode::Standard,
        "nesterov" => MomentumMode::Nesterov,
        m => return Err(bad(format!("Momentum: mode {m} is not supported"))),
    };
    let nc = a.float("norm_coefficient", 0.0)?;
    let mut outs: [Vec<Tensor>; 2] = Default::default();
    for i in 0..o.n {
        let (x, v) = kiln::kernels::optim::momentum_onnx(
            o.r,
            o.step,
            o.slot(0, i)?,
            o.slot(1, i)?,
            o.slot(2, i)?,
            alpha,
            beta,
            mode,
            nc,
        )?;
        outs[0].push(x);
        outs[1].push(v);
    }
    Ok(outs.into_iter().flatten().collect())
}

/// `Adagrad` (training domain): outputs every updated X, then every H.
fn adagrad(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    let o = OptimizerInputs::new(call, 3)?;
    let decay = a.float("decay_factor", 0.0)?;
    let eps = a.float("epsilon", 1e-6)?;
    let nc = a.float("norm_coefficient", 0.0)?;
    let mut outs: [Vec<Tensor>; 2] = Default::default();
    for i in 0..o.n {
        let (x, h) = kiln::kernels::optim::adagrad_onnx(
            o.r,
            o.step,
            o.slot(0, i)?,
            o.slot(1, i)?,
            o.slot(2, i)?,
            decay,
            eps,
            nc,
        )?;
        outs[0].push(x);
        outs[1].push(h);
    }
    Ok(outs.into_iter().flatten().collect())
}

/// `MaxPool`, `AveragePool`.
fn pool(call: &Call) -> Result<Vec<Tensor>> {
    let op = call.op;
    let a = &call.attrs;
    no_auto_pad(op, a)?;
    if a.int("storage_order", 0)? != 0 {
        return Err(bad("MaxPool: storage_order 1 is not supported"));
    }
    let kernel = pair(op, "kernel_shape", a.ints("kernel_shape")?, 0)?;
    let p = kiln::kernels::pool::Pool2dParams {
        kernel,
        stride: pair(op, "strides", a.ints("strides")?, 1)?,
        padding: pads4(op, a.ints("pads")?)?,
        dilation: pair(op, "dilations", a.ints("dilations")?, 1)?,
        count_include_pad: a.int("count_include_pad", 0)? != 0,
        ceil_mode: a.int("ceil_mode", 0)? != 0,
    };
    let x = call.t(0)?;
    Ok(vec![if op == "MaxPool" {
        x.max_pool2d(&p)?
    } else {
        x.avg_pool2d(&p)?
    }])
}

/// `GlobalAveragePool`.
fn global_average_pool(call: &Call) -> Result<Vec<Tensor>> {
    Ok(vec![call.t(0)?.global_avg_pool2d()?])
}

/// `LeakyRelu`.
fn leaky_relu(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    Ok(vec![call.t(0)?.leaky_relu(a.float("alpha", 0.01)?)?])
}

/// `Gelu`.
fn gelu(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    let approx = a.string("approximate", "none")?;
    let tanh = match approx.as_str() {
        "none" => false,
        "tanh" => true,
        other => return Err(bad(format!("Gelu: approximate={other} is not supported"))),
    };
    Ok(vec![call.t(0)?.gelu(tanh)?])
}

/// `Softmax`.
fn softmax(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    Ok(vec![call.t(0)?.softmax(a.int("axis", -1)? as isize)?])
}

/// `LogSoftmax`.
fn log_softmax(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    Ok(vec![call.t(0)?.log_softmax(a.int("axis", -1)? as isize)?])
}

/// `SoftmaxCrossEntropyLoss`.
fn softmax_cross_entropy_loss(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    let red = a.string("reduction", "mean")?;
    if red != "mean" {
        return Err(bad(format!(
            "SoftmaxCrossEntropyLoss: reduction {red} is not supported"
        )));
    }
    if a.raw("ignore_index").is_some() {
        return Err(bad(
            "SoftmaxCrossEntropyLoss: ignore_index is not supported",
        ));
    }
    let labels = match call.input(1)? {
        Val::I(v, s) => {
            let v: Vec<i32> = v
                .iter()
                .map(|&x| i32::try_from(x).map_err(|_| bad(format!("label {x} out of i32 range"))))
                .collect::<Result<_>>()?;
            Tensor::from_slice(call.t(0)?.context(), &v, s)?
        }
        Val::T(_) | Val::S(..) => {
            return Err(bad("SoftmaxCrossEntropyLoss: labels must be integers"))
        }
    };
    let (loss, log_prob) = call.t(0)?.softmax_cross_entropy(&labels, call.opt_t(2)?)?;
    Ok(vec![loss, log_prob])
}

/// `LayerNormalization`.
fn layer_normalization(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    if a.int("stash_type", 1)? != 1 {
        return Err(bad("LayerNormalization: stash_type must be 1 (float32)"));
    }
    let axis = a.int("axis", -1)? as isize;
    let eps = a.float("epsilon", 1e-5)?;
    Ok(vec![call.t(0)?.layer_norm(
        axis,
        call.opt_t(1)?,
        call.opt_t(2)?,
        eps,
    )?])
}

/// `BatchNormalization`.
fn batch_normalization(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    if a.int("training_mode", 0)? != 0 {
        return Err(bad(
            "BatchNormalization: training_mode=1 is not supported by the runner",
        ));
    }
    a.float("momentum", 0.9)?;
    let eps = a.float("epsilon", 1e-5)?;
    Ok(vec![call.t(0)?.batch_norm_inference(
        call.t(1)?,
        call.t(2)?,
        call.t(3)?,
        call.t(4)?,
        eps,
    )?])
}

/// `RNN`, `LSTM`, `GRU`.
fn recurrent(call: &Call) -> Result<Vec<Tensor>> {
    let op = call.op;
    let a = &call.attrs;
    let dir = a.string("direction", "forward")?;
    if dir != "forward" {
        return Err(bad(format!("{op}: direction {dir} is not supported")));
    }
    if a.int("layout", 0)? != 0 {
        return Err(bad(format!("{op}: layout 1 is not supported")));
    }
    for k in ["activations", "activation_alpha", "activation_beta", "clip"] {
        if a.raw(k).is_some() {
            return Err(bad(format!("{op}: attribute {k} is not supported")));
        }
    }
    if op == "LSTM" && a.int("input_forget", 0)? != 0 {
        return Err(bad("LSTM: input_forget is not supported"));
    }
    if call.inputs.get(4).and_then(Option::as_ref).is_some() {
        return Err(bad(format!("{op}: sequence_lens is not supported")));
    }
    if op == "LSTM" && call.inputs.get(7).and_then(Option::as_ref).is_some() {
        return Err(bad("LSTM: peepholes are not supported"));
    }
    let hidden = a.int("hidden_size", 0)?;
    let (x, w, r) = (call.t(0)?, call.t(1)?, call.t(2)?);
    let drop_dir = |x: &Tensor| -> Result<Tensor> {
        let s = x.shape();
        if s.first() != Some(&1) {
            return Err(bad(format!(
                "{op}: expected one direction, got shape {s:?}"
            )));
        }
        Ok(x.reshape(&s[1..])?)
    };
    let (w, r) = (drop_dir(w)?, drop_dir(r)?);
    if hidden > 0 && r.shape().get(1) != Some(&(hidden as usize)) {
        return Err(bad(format!(
            "{op}: hidden_size {hidden} and R of shape {:?} disagree",
            r.shape()
        )));
    }
    let b = call.opt_t(3)?.map(drop_dir).transpose()?;
    let h0 = call.opt_t(5)?.map(drop_dir).transpose()?;
    let out = match op {
        "RNN" => kiln::kernels::recurrent::rnn(x, &w, &r, b.as_ref(), h0.as_ref())?,
        "LSTM" => {
            let c0 = call.opt_t(6)?.map(drop_dir).transpose()?;
            kiln::kernels::recurrent::lstm(x, &w, &r, b.as_ref(), h0.as_ref(), c0.as_ref())?
        }
        _ => {
            let lbr = a.int("linear_before_reset", 0)? != 0;
            kiln::kernels::recurrent::gru(x, &w, &r, b.as_ref(), h0.as_ref(), lbr)?
        }
    };
    let ys = out.y.shape().to_vec();
    let mut v = vec![
        out.y.reshape(&[ys[0], 1, ys[1], ys[2]])?,
        out.h.reshape(&[1, ys[1], ys[2]])?,
    ];
    if let Some(c) = out.c {
        v.push(c.reshape(&[1, ys[1], ys[2]])?);
    }
    Ok(v)
}

/// `Conv`.
fn conv(call: &Call) -> Result<Vec<Tensor>> {
    let op = call.op;
    let a = &call.attrs;
    no_auto_pad(op, a)?;
    let p = kiln::kernels::conv::Conv2dParams {
        stride: pair(op, "strides", a.ints("strides")?, 1)?,
        padding: pads4(op, a.ints("pads")?)?,
        dilation: pair(op, "dilations", a.ints("dilations")?, 1)?,
        groups: usize::try_from(a.int("group", 1)?).map_err(|_| bad("Conv: negative group"))?,
    };
    let w = call.t(1)?;
    if let Some(ks) = a.ints("kernel_shape")? {
        if usizes(op, "kernel_shape", &ks)? != w.shape()[2..] {
            return Err(bad(format!(
                "Conv (kernel_shape vs W): shapes {ks:?} and {:?} disagree",
                w.shape()
            )));
        }
    }
    Ok(vec![call.t(0)?.conv2d(w, call.opt_t(2)?, &p)?])
}

/// `ConvTranspose`.
fn conv_transpose(call: &Call) -> Result<Vec<Tensor>> {
    let op = call.op;
    let a = &call.attrs;
    no_auto_pad(op, a)?;
    if a.ints("output_shape")?.is_some() {
        return Err(bad(
            "ConvTranspose: output_shape is not supported (give pads)",
        ));
    }
    let p = kiln::kernels::conv::ConvTranspose2dParams {
        stride: pair(op, "strides", a.ints("strides")?, 1)?,
        padding: pads4(op, a.ints("pads")?)?,
        output_padding: pair(op, "output_padding", a.ints("output_padding")?, 0)?,
        dilation: pair(op, "dilations", a.ints("dilations")?, 1)?,
        groups: usize::try_from(a.int("group", 1)?)
            .map_err(|_| bad("ConvTranspose: negative group"))?,
    };
    let w = call.t(1)?;
    if let Some(ks) = a.ints("kernel_shape")? {
        if usizes(op, "kernel_shape", &ks)? != w.shape()[2..] {
            return Err(bad(format!(
                "ConvTranspose (kernel_shape vs W): shapes {ks:?} and {:?} disagree",
                w.shape()
            )));
        }
    }
    Ok(vec![call.t(0)?.conv_transpose2d(w, call.opt_t(2)?, &p)?])
}

/// `Attention`.
fn attention(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    for k in ["qk_matmul_output_mode", "softcap"] {
        if a.raw(k).is_some_and(|v| v.as_f64() != Some(0.0)) {
            return Err(bad(format!("Attention: attribute {k} is not supported")));
        }
    }
    if call.inputs.len() > 4 && call.inputs[4..].iter().any(Option::is_some) {
        return Err(bad(
            "Attention: past_key/past_value/nonpad_kv_seqlen inputs are not supported",
        ));
    }
    let p = kiln::kernels::attention::AttentionParams {
        scale: a.opt_float("scale")?,
        causal: a.int("is_causal", 0)? != 0,
    };
    let (q, k, v) = (call.t(0)?, call.t(1)?, call.t(2)?);
    let mask = call.opt_t(3)?;
    if q.rank() == 3 {
        let hq = a.int("q_num_heads", 0)?;
        let hkv = a.int("kv_num_heads", 0)?;
        if hq <= 0 || hkv <= 0 {
            return Err(bad(
                "Attention: 3-D inputs need q_num_heads and kv_num_heads",
            ));
        }
        let (hq, hkv) = (hq as usize, hkv as usize);
        let split = |x: &Tensor, h: usize| -> Result<Tensor> {
            let s = x.shape();
            if !s[2].is_multiple_of(h) {
                return Err(bad(format!(
                    "Attention: hidden size {} not divisible by {h} heads",
                    s[2]
                )));
            }
            Ok(x.reshape(&[s[0], s[1], h, s[2] / h])?
                .permute(&[0, 2, 1, 3])?)
        };
        let y = split(q, hq)?.attention(&split(k, hkv)?, &split(v, hkv)?, mask, &p)?;
        let ys = y.shape().to_vec();
        Ok(vec![y.permute(&[0, 2, 1, 3])?.reshape(&[
            ys[0],
            ys[2],
            ys[1] * ys[3],
        ])?])
    } else {
        a.int("q_num_heads", 0)?;
        a.int("kv_num_heads", 0)?;
        Ok(vec![q.attention(k, v, mask, &p)?])
    }
}

/// `Equal`, `Less`, `LessOrEqual`, `Greater`, `GreaterOrEqual`: an f32 0/1 mask.
fn comparison(call: &Call) -> Result<Vec<Tensor>> {
    use kiln::kernels::CompareOp;
    call.bool_as_f32()?;
    let op = match call.op {
        "Equal" => CompareOp::Eq,
        "Less" => CompareOp::Lt,
        "LessOrEqual" => CompareOp::Le,
        "Greater" => CompareOp::Gt,
        "GreaterOrEqual" => CompareOp::Ge,
        other => return Err(bad(format!("{other} is not a comparison"))),
    };
    Ok(vec![call.t(0)?.compare(op, call.t(1)?)?])
}

/// `Where` (condition as an f32 0/1 mask).
fn where_(call: &Call) -> Result<Vec<Tensor>> {
    call.bool_as_f32()?;
    Ok(vec![call.t(0)?.where_select(call.t(1)?, call.t(2)?)?])
}

/// `Clip`: `min` and `max` are optional one-element float inputs.
fn clip(call: &Call) -> Result<Vec<Tensor>> {
    let bound = |i: usize, default: f32| match call.inputs.get(i).and_then(Option::as_ref) {
        None => Ok(default),
        Some(Val::S(_, v)) => Ok(*v),
        Some(_) => Err(bad(format!(
            "Clip: input {i} (min/max) must be a one-element float tensor"
        ))),
    };
    let (lo, hi) = (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?);
    Ok(vec![call.t(0)?.clamp(lo, hi)?])
}

/// `ArgMax`, `ArgMin`: i32 indices (the set's expected values are I64).
fn arg_reduce(call: &Call) -> Result<Vec<Tensor>> {
    let a = &call.attrs;
    if a.int("select_last_index", 0)? != 0 {
        return Err(bad(format!(
            "{}: select_last_index 1 is not supported",
            call.op
        )));
    }
    let axis = call.axis(Some(0))?;
    let keep = a.int("keepdims", 1)? != 0;
    let x = call.t(0)?;
    Ok(vec![if call.op == "ArgMax" {
        x.argmax(axis, keep)?
    } else {
        x.argmin(axis, keep)?
    }])
}

/// `Concat` (any number of inputs).
fn concat(call: &Call) -> Result<Vec<Tensor>> {
    let axis = call.axis(None)?;
    let parts = (0..call.inputs.len())
        .map(|i| call.t(i))
        .collect::<Result<Vec<&Tensor>>>()?;
    if parts.is_empty() {
        return Err(bad("Concat: no inputs"));
    }
    Ok(vec![Tensor::concat(&parts, axis)?])
}

/// `Slice`: starts, ends and the optional axes and steps are I64 inputs.
fn slice(call: &Call) -> Result<Vec<Tensor>> {
    let (starts, ends) = (call.ints(1)?, call.ints(2)?);
    let axes: Vec<isize> = match call.opt_ints(3)? {
        Some(a) => a
            .iter()
            .map(|&v| {
                isize::try_from(v).map_err(|_| bad(format!("Slice: axis {v} is out of range")))
            })
            .collect::<Result<_>>()?,
        None => (0..starts.len() as isize).collect(),
    };
    let steps = match call.opt_ints(4)? {
        Some(s) => s.to_vec(),
        None => vec![1; starts.len()],
    };
    Ok(vec![call.t(0)?.slice(&axes, starts, ends, &steps)?])
}

/// `Gather`, `GatherElements`: I64 indices, passed to kiln as i32.
fn gather(call: &Call) -> Result<Vec<Tensor>> {
    let x = call.t(0)?;
    let idx = call.index_tensor(1, x)?;
    let axis = call.axis(Some(0))?;
    Ok(vec![if call.op == "Gather" {
        x.gather(&idx, axis)?
    } else {
        x.gather_elements(&idx, axis)?
    }])
}

/// `ScatterElements` with `reduction = "add"`.
fn scatter_elements(call: &Call) -> Result<Vec<Tensor>> {
    let reduction = call.attrs.string("reduction", "none")?;
    if reduction != "add" {
        return Err(bad(format!(
            "ScatterElements: reduction {reduction} is not supported (only add)"
        )));
    }
    let x = call.t(0)?;
    let idx = call.index_tensor(1, x)?;
    Ok(vec![x.scatter_add(
        call.axis(Some(0))?,
        &idx,
        call.t(2)?,
    )?])
}

/// `CumSum`: the axis is a one-element I64 input.
fn cumsum(call: &Call) -> Result<Vec<Tensor>> {
    let axis = match call.ints(1)? {
        [a] => isize::try_from(*a).map_err(|_| bad(format!("CumSum: axis {a} is out of range")))?,
        other => {
            return Err(bad(format!(
                "CumSum: axis must have one value, got {other:?}"
            )))
        }
    };
    let a = &call.attrs;
    let (exclusive, reverse) = (a.int("exclusive", 0)? != 0, a.int("reverse", 0)? != 0);
    Ok(vec![call.t(0)?.cumsum(axis, exclusive, reverse)?])
}

fn to_val(ctx: &Context, h: &HostTensor) -> Result<Val> {
    Ok(match h {
        HostTensor::F32(v, s) => match v.as_slice() {
            [x] => Val::S(Tensor::from_slice(ctx, v, s)?, *x),
            _ => Val::T(Tensor::from_slice(ctx, v, s)?),
        },
        HostTensor::I64(v, s) => Val::I(v.clone(), s.clone()),
    })
}

/// Compares `got` with `want` by the set's rule; returns a failure line or None. Integer
/// expected values (I64: ArgMax/ArgMin) need kiln's i32 result and are compared exactly.
async fn compare(
    case: &str,
    name: &str,
    got: &Tensor,
    want: &HostTensor,
    rtol: f64,
    atol: f64,
) -> Result<Option<String>> {
    let ws = match want {
        HostTensor::F32(_, s) | HostTensor::I64(_, s) => s,
    };
    if got.shape() != ws.as_slice() {
        return Ok(Some(format!(
            "{case} {name}: shape {:?}, expected {:?}",
            got.shape(),
            ws
        )));
    }
    let want_dtype = match want {
        HostTensor::F32(..) => DType::F32,
        HostTensor::I64(..) => DType::I32,
    };
    if got.dtype() != want_dtype {
        return Ok(Some(format!(
            "{case} {name}: dtype {}, expected {want_dtype}",
            got.dtype()
        )));
    }
    let w = match want {
        HostTensor::F32(w, _) => w,
        HostTensor::I64(w, _) => {
            let g = got.to_vec_async::<i32>().await?;
            let wrong: Vec<usize> = (0..g.len()).filter(|&i| i64::from(g[i]) != w[i]).collect();
            return Ok(wrong.first().map(|&i| {
                format!(
                    "{case} {name}: {} of {} integers differ; first at index {i}: got {}, expected {}",
                    wrong.len(),
                    g.len(),
                    g[i],
                    w[i]
                )
            }));
        }
    };
    let g = got.to_vec_async::<f32>().await?;
    let mut worst: Option<(usize, f64)> = None;
    let mut bad_count = 0;
    for (i, (&gv, &wv)) in g.iter().zip(w).enumerate() {
        let (gv, wv) = (f64::from(gv), f64::from(wv));
        let err = (gv - wv).abs();
        let tol = atol + rtol * wv.abs();
        if err.is_nan() || err > tol {
            bad_count += 1;
            let excess = if err.is_nan() {
                f64::INFINITY
            } else {
                err - tol
            };
            if worst.is_none_or(|(_, e)| excess > e) {
                worst = Some((i, excess));
            }
        }
    }
    Ok(worst.map(|(i, _)| {
        format!(
            "{case} {name}: {bad_count} of {} elements out of tolerance (rtol {rtol}, atol {atol}); worst index {i}: got {}, expected {}",
            g.len(),
            g[i],
            w[i]
        )
    }))
}

/// Places a case's inputs in their ONNX slots (`_input_positions`).
fn slots(case: &Case, vals: Vec<Val>) -> Result<Vec<Option<Val>>> {
    let positions: Vec<usize> = match case.attrs.get("_input_positions").and_then(Value::as_array) {
        Some(p) => p
            .iter()
            .map(|v| v.as_u64().map(|x| x as usize))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| bad("_input_positions is not a list of integers"))?,
        None => (0..vals.len()).collect(),
    };
    if positions.len() != vals.len() {
        return Err(bad("_input_positions and inputs differ in length"));
    }
    let mut out: Vec<Option<Val>> = vec![None; positions.iter().max().map_or(0, |m| m + 1)];
    for (p, v) in positions.into_iter().zip(vals) {
        out[p] = Some(v);
    }
    Ok(out)
}

fn run_graph(case: &Case, env: &mut HashMap<String, Val>) -> Result<Vec<Tensor>> {
    for node in &case.graph {
        let ins: Vec<Option<Val>> = node
            .inputs
            .iter()
            .map(|n| {
                if n.is_empty() {
                    Ok(None)
                } else {
                    env.get(n)
                        .cloned()
                        .map(Some)
                        .ok_or_else(|| bad(format!("graph value {n} is not defined")))
                }
            })
            .collect::<Result<_>>()?;
        let outs = apply(&node.op, "", &node.attrs, &ins)?;
        for (name, t) in node.outputs.iter().zip(outs) {
            env.insert(name.clone(), Val::T(t));
        }
    }
    case.outputs
        .iter()
        .map(|n| match env.get(n) {
            Some(Val::T(t) | Val::S(t, _)) => Ok(t.clone()),
            _ => Err(bad(format!("graph output {n} was not produced"))),
        })
        .collect()
}

async fn run_case_inner(ctx: &Context, suite: &Suite, case: &Case) -> Result<Vec<String>> {
    let mut vals = Vec::with_capacity(case.inputs.len());
    let mut leaves: HashMap<String, Tensor> = HashMap::new();
    for name in &case.inputs {
        let mut v = to_val(ctx, suite.tensor(&case.name, name)?)?;
        if case.grads.iter().any(|(i, _)| i == name) {
            if let Val::T(t) | Val::S(t, _) = &v {
                let leaf = t.with_grad();
                leaves.insert(name.clone(), leaf.clone());
                v = Val::T(leaf);
            }
        }
        vals.push(v);
    }
    let outs = if case.op == "Graph" {
        let mut env: HashMap<String, Val> = case.inputs.iter().cloned().zip(vals).collect();
        run_graph(case, &mut env)?
    } else {
        apply(&case.op, &case.domain, &case.attrs, &slots(case, vals)?)?
    };
    if outs.len() < case.outputs.len() {
        return Err(bad(format!(
            "{} produced {} outputs, the case expects {}",
            case.op,
            outs.len(),
            case.outputs.len()
        )));
    }
    let tol_of = |name: &str| {
        case.tol
            .get(name)
            .copied()
            .unwrap_or((case.rtol, case.atol))
    };
    let mut failures = Vec::new();
    for (name, got) in case.outputs.iter().zip(&outs) {
        let (rtol, atol) = tol_of(name);
        if let Some(f) = compare(
            &case.name,
            name,
            got,
            suite.tensor(&case.name, name)?,
            rtol,
            atol,
        )
        .await?
        {
            failures.push(f);
        }
    }
    if !case.grads.is_empty() {
        let up_name = case.upstream.as_deref().unwrap_or("dY");
        let up = match to_val(ctx, suite.tensor(&case.name, up_name)?)? {
            Val::T(t) | Val::S(t, _) => t,
            Val::I(..) => return Err(bad("upstream gradient is not f32")),
        };
        let wrt: Vec<&Tensor> = case
            .grads
            .keys()
            .map(|i| {
                leaves
                    .get(i)
                    .ok_or_else(|| bad(format!("gradient input {i} is not a float input")))
            })
            .collect::<Result<_>>()?;
        let grads = kiln::autograd::grad(&[&outs[0]], &[&up], &wrt)?;
        for ((input, gname), g) in case.grads.iter().zip(grads) {
            let (rtol, atol) = tol_of(gname);
            let want = suite.tensor(&case.name, gname)?;
            match g {
                None => failures.push(format!(
                    "{} {gname}: no gradient reached input {input}",
                    case.name
                )),
                Some(g) => {
                    if let Some(f) = compare(&case.name, gname, &g, want, rtol, atol).await? {
                        failures.push(f);
                    }
                }
            }
        }
    }
    Ok(failures)
}

/// Runs one case; an error while running becomes the case's failure reason (the browser's
/// kernel self-check runs this, one case at a time).
pub async fn run_case_async(ctx: &Context, suite: &Suite, case: &Case) -> Verdict {
    let failures = match run_case_inner(ctx, suite, case).await {
        Ok(f) => f,
        Err(e) => vec![format!("{} could not run: {e:#}", case.name)],
    };
    Verdict {
        case: case.name.clone(),
        failures,
    }
}

/// Runs every case whose name contains `filter` (all when `None`). Blocks; see
/// [`run_suite_async`].
#[cfg(not(target_arch = "wasm32"))]
pub fn run_suite(
    ctx: &Context,
    suite: &Suite,
    filter: Option<&str>,
    progress: impl FnMut(usize, usize, &Verdict),
) -> Vec<Verdict> {
    pollster::block_on(run_suite_async(ctx, suite, filter, progress))
}

/// [`run_suite`] without blocking a thread.
pub async fn run_suite_async(
    ctx: &Context,
    suite: &Suite,
    filter: Option<&str>,
    mut progress: impl FnMut(usize, usize, &Verdict),
) -> Vec<Verdict> {
    let selected: Vec<&Case> = suite
        .cases
        .iter()
        .filter(|c| filter.is_none_or(|f| c.name.contains(f)))
        .collect();
    let total = selected.len();
    let mut out = Vec::with_capacity(total);
    for (i, case) in selected.into_iter().enumerate() {
        let v = run_case_async(ctx, suite, case).await;
        progress(i + 1, total, &v);
        out.push(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Suite;
    use std::path::Path;

    #[test]
    fn corrupt_conformance_files_are_rejected_with_the_reason() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance");
        let json = std::fs::read(dir.join("cases.json")).unwrap();
        let st = std::fs::read(dir.join("cases.safetensors")).unwrap();
        let err = Suite::from_bytes(&json[..json.len() / 2], &st)
            .err()
            .unwrap();
        assert!(err.to_string().contains("cases.json"), "{err}");
        let err = Suite::from_bytes(&json, &st[..st.len() / 2]).err().unwrap();
        assert!(err.to_string().contains("cases.safetensors"), "{err}");
    }
}
