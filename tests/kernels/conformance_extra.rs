//! The ONNX-style conformance cases of tests/data/conformance-extra/ (written by
//! scripts/gen/conformance_extra.py, format as in ../shared/conformance/README.md) for the
//! comparison, selection and indexing primitives, run through the public tensor API: every
//! case's outputs and gradients must pass |got - exp| <= atol + rtol * |exp|, with exact shapes.
//! /work/notes/conformance_ops.md maps each ONNX op and attribute to the kiln call.

use crate::common;

use std::collections::HashMap;
use std::path::Path;

use common::ctx;
use kiln::kernels::CompareOp;
use kiln::{autograd, Tensor};
use serde_json::Value;

/// A stored tensor: F32 values or I64 integers, with its shape.
#[derive(Clone, Debug)]
enum Host {
    F32(Vec<f32>, Vec<usize>),
    I64(Vec<i64>, Vec<usize>),
}

impl Host {
    fn shape(&self) -> &[usize] {
        match self {
            Host::F32(_, s) | Host::I64(_, s) => s,
        }
    }
    fn f32(&self) -> Tensor {
        match self {
            Host::F32(v, s) => Tensor::from_slice(ctx(), v, s).expect("upload"),
            Host::I64(..) => panic!("expected an F32 tensor"),
        }
    }
    fn ints(&self) -> Vec<i64> {
        match self {
            Host::I64(v, _) => v.clone(),
            Host::F32(..) => panic!("expected an I64 tensor"),
        }
    }
    fn i32(&self) -> Tensor {
        let v: Vec<i32> = self
            .ints()
            .iter()
            .map(|&x| i32::try_from(x).expect("index fits i32"))
            .collect();
        Tensor::from_slice(ctx(), &v, self.shape()).expect("upload")
    }
}

fn load() -> (Vec<Value>, HashMap<String, Host>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance-extra");
    let json: Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).expect("cases.json"))
            .expect("cases.json parses");
    assert_eq!(json["format"], 1);
    let cases = json["cases"].as_array().expect("a case list").clone();
    let bytes = std::fs::read(dir.join("cases.safetensors")).expect("cases.safetensors");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("cases.safetensors parses");
    let mut map = HashMap::new();
    for (name, view) in st.iter() {
        let shape = view.shape().to_vec();
        let raw = view.data();
        let t = match view.dtype() {
            safetensors::Dtype::F32 => Host::F32(
                raw.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                shape,
            ),
            safetensors::Dtype::I64 => Host::I64(
                raw.chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect(),
                shape,
            ),
            other => panic!("{name}: unexpected dtype {other:?}"),
        };
        map.insert(name.to_string(), t);
    }
    (cases, map)
}

fn attr_i(case: &Value, key: &str, default: i64) -> i64 {
    case["attrs"]
        .get(key)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

/// One case: its inputs (tensors for F32 inputs, made gradient leaves when differentiated).
struct Run<'a> {
    case: &'a Value,
    name: String,
    store: &'a HashMap<String, Host>,
    leaves: HashMap<String, Tensor>,
}

impl Run<'_> {
    fn host(&self, tensor: &str) -> &Host {
        let key = format!("{}/{tensor}", self.name);
        self.store
            .get(&key)
            .unwrap_or_else(|| panic!("missing tensor {key}"))
    }
    /// The case's input at ONNX position `k`, if given.
    fn input_name(&self, k: usize) -> Option<String> {
        self.case["inputs"]
            .as_array()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    }
    fn input(&self, k: usize) -> Tensor {
        let n = self.input_name(k).expect("input present");
        self.leaves
            .get(&n)
            .cloned()
            .unwrap_or_else(|| self.host(&n).f32())
    }
    fn ints(&self, k: usize) -> Option<Vec<i64>> {
        self.input_name(k).map(|n| self.host(&n).ints())
    }
}

/// The kiln call for the case's ONNX op: the first output as a tensor.
fn apply(r: &Run) -> Tensor {
    let c = r.case;
    let op = c["op"].as_str().expect("op");
    let axis = || attr_i(c, "axis", 0) as isize;
    let cmp = |o: CompareOp| r.input(0).compare(o, &r.input(1)).expect("compare");
    match op {
        "Equal" => cmp(CompareOp::Eq),
        "Less" => cmp(CompareOp::Lt),
        "LessOrEqual" => cmp(CompareOp::Le),
        "Greater" => cmp(CompareOp::Gt),
        "GreaterOrEqual" => cmp(CompareOp::Ge),
        "Where" => r
            .input(0)
            .where_select(&r.input(1), &r.input(2))
            .expect("where"),
        "Clip" => {
            let bound = |k: usize, default: f32| match r.input_name(k) {
                Some(n) => match r.host(&n) {
                    Host::F32(v, _) => v[0],
                    Host::I64(..) => panic!("Clip bounds are F32"),
                },
                None => default,
            };
            let (lo, hi) = (bound(1, f32::NEG_INFINITY), bound(2, f32::INFINITY));
            r.input(0).clamp(lo, hi).expect("clamp")
        }
        "ArgMax" | "ArgMin" => {
            assert_eq!(
                attr_i(c, "select_last_index", 0),
                0,
                "only the first index is supported"
            );
            let keep = attr_i(c, "keepdims", 1) == 1;
            let x = r.input(0);
            if op == "ArgMax" {
                x.argmax(axis(), keep)
            } else {
                x.argmin(axis(), keep)
            }
            .expect("arg reduce")
        }
        "Concat" => {
            let n = c["inputs"].as_array().expect("inputs").len();
            let parts: Vec<Tensor> = (0..n).map(|k| r.input(k)).collect();
            let refs: Vec<&Tensor> = parts.iter().collect();
            Tensor::concat(&refs, axis()).expect("concat")
        }
        "Slice" => {
            let x = r.input(0);
            let starts = r.ints(1).expect("starts");
            let ends = r.ints(2).expect("ends");
            let axes: Vec<isize> = match r.ints(3) {
                Some(a) => a.iter().map(|&v| v as isize).collect(),
                None => (0..starts.len() as isize).collect(),
            };
            let steps = r.ints(4).unwrap_or(vec![1; starts.len()]);
            x.slice(&axes, &starts, &ends, &steps).expect("slice")
        }
        "Gather" => {
            let idx = r.host(&r.input_name(1).expect("indices")).i32();
            r.input(0).gather(&idx, axis()).expect("gather")
        }
        "GatherElements" => {
            let idx = r.host(&r.input_name(1).expect("indices")).i32();
            r.input(0)
                .gather_elements(&idx, axis())
                .expect("gather_elements")
        }
        "ScatterElements" => {
            assert_eq!(
                c["attrs"]["reduction"], "add",
                "only reduction add is supported"
            );
            let idx = r.host(&r.input_name(1).expect("indices")).i32();
            r.input(0)
                .scatter_add(axis(), &idx, &r.input(2))
                .expect("scatter_add")
        }
        "CumSum" => {
            let a = r.ints(1).expect("axis")[0] as isize;
            let ex = attr_i(c, "exclusive", 0) == 1;
            let rev = attr_i(c, "reverse", 0) == 1;
            r.input(0).cumsum(a, ex, rev).expect("cumsum")
        }
        other => panic!("no kiln call for op {other}"),
    }
}

/// Mismatches of `got` against the stored tensor `want` under the case's rule.
fn check(what: &str, got: &Tensor, want: &Host, tol: (f64, f64)) -> Option<String> {
    if got.shape() != want.shape() {
        return Some(format!(
            "{what}: shape {:?}, want {:?}",
            got.shape(),
            want.shape()
        ));
    }
    let (got, want): (Vec<f64>, Vec<f64>) = match want {
        Host::F32(w, _) => (
            got.to_vec::<f32>()
                .expect("readback")
                .iter()
                .map(|&v| f64::from(v))
                .collect(),
            w.iter().map(|&v| f64::from(v)).collect(),
        ),
        Host::I64(w, _) => (
            got.to_vec::<i32>()
                .expect("readback")
                .iter()
                .map(|&v| f64::from(v))
                .collect(),
            w.iter().map(|&v| v as f64).collect(),
        ),
    };
    let (rtol, atol) = tol;
    got.iter()
        .zip(&want)
        .enumerate()
        .find(|(_, (g, w))| {
            let err = (*g - *w).abs();
            err.is_nan() || err > atol + rtol * w.abs()
        })
        .map(|(i, (g, w))| {
            format!("{what}: index {i}: got {g}, want {w} (rtol {rtol}, atol {atol})")
        })
}

#[test]
fn every_extra_conformance_case_passes_through_the_tensor_api() {
    let (cases, store) = load();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut failures = Vec::new();
    let mut ops = std::collections::BTreeSet::new();
    for case in &cases {
        let name = case["name"].as_str().expect("name").to_string();
        ops.insert(case["op"].as_str().expect("op").to_string());
        let grads: Vec<(String, String)> = case["grads"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("grad name").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut run = Run {
            case,
            name: name.clone(),
            store: &store,
            leaves: HashMap::new(),
        };
        for (input, _) in &grads {
            let leaf = run.host(input).f32().with_grad();
            run.leaves.insert(input.clone(), leaf);
        }
        let tol_of = |tensor: &str| -> (f64, f64) {
            match case["tol"].get(tensor).and_then(Value::as_array) {
                Some(p) => (p[0].as_f64().expect("rtol"), p[1].as_f64().expect("atol")),
                None => (
                    case["rtol"].as_f64().expect("rtol"),
                    case["atol"].as_f64().expect("atol"),
                ),
            }
        };
        let y = apply(&run);
        let out_name = case["outputs"][0].as_str().expect("an output");
        failures.extend(check(
            &format!("{name}/{out_name}"),
            &y,
            run.host(out_name),
            tol_of(out_name),
        ));
        if grads.is_empty() {
            continue;
        }
        let dy = run.host("dY").f32();
        let wrt: Vec<&Tensor> = grads.iter().map(|(k, _)| &run.leaves[k]).collect();
        let got = autograd::grad(&[&y], &[&dy], &wrt).expect("grad");
        for ((_, gname), g) in grads.iter().zip(got) {
            let g = g.unwrap_or_else(|| panic!("{name}: no gradient for {gname}"));
            failures.extend(check(
                &format!("{name}/{gname}"),
                &g,
                run.host(gname),
                tol_of(gname),
            ));
        }
    }
    eprintln!("{} extra conformance cases over ops {ops:?}", cases.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
