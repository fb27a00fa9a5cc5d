//! RNN, LSTM and GRU (ONNX forward direction) against the f64 reference: outputs on odd sizes
//! with and without the optional inputs, a longer sequence, and every input's gradient against
//! finite differences.

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng, RngExt};
use kiln::autograd::grad;
use kiln::kernels::recurrent::{self, RecurrentOutput};
use kiln::reference::recurrent::{self as reference, Dims};
use kiln::{Error, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cell {
    Rnn,
    Lstm,
    Gru(bool),
}

const CELLS: [Cell; 4] = [Cell::Rnn, Cell::Lstm, Cell::Gru(false), Cell::Gru(true)];

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Lstm => 4,
            Cell::Gru(_) => 3,
        }
    }
}

/// Which optional inputs a case passes.
#[derive(Clone, Copy, Debug)]
struct Opts {
    bias: bool,
    h0: bool,
    c0: bool,
}

const ALL: Opts = Opts {
    bias: true,
    h0: true,
    c0: true,
};
const NONE: Opts = Opts {
    bias: false,
    h0: false,
    c0: false,
};

/// Host data of one case: x, w, r, then the optional inputs that are present.
struct Case {
    cell: Cell,
    d: Dims,
    opts: Opts,
    x: Vec<f32>,
    w: Vec<f32>,
    r: Vec<f32>,
    b: Vec<f32>,
    h0: Vec<f32>,
    c0: Vec<f32>,
}

impl Case {
    /// Seeded inputs: x in [-1, 1) with outliers when `outliers`, weights scaled by 1/sqrt(fan-in)
    /// so that the gates are not all saturated.
    fn new(cell: Cell, d: Dims, opts: Opts, outliers: bool, seed: u64) -> Case {
        let mut rng = Rng::new(seed);
        let (s, b, i, h) = (d.seq, d.batch, d.input, d.hidden);
        let gh = cell.gates() * h;
        let x = if outliers {
            rng.vec(s * b * i, -1.0, 1.0)
        } else {
            rng.uniform_vec(s * b * i, -1.0, 1.0)
        };
        let wi = 1.5 / (i as f32).sqrt();
        let wh = 1.5 / (h as f32).sqrt();
        Case {
            cell,
            d,
            opts,
            x,
            w: rng.uniform_vec(gh * i, -wi, wi),
            r: rng.uniform_vec(gh * h, -wh, wh),
            b: rng.uniform_vec(2 * gh, -0.5, 0.5),
            h0: rng.uniform_vec(b * h, -0.9, 0.9),
            c0: rng.uniform_vec(b * h, -1.5, 1.5),
        }
    }

    fn has_c0(&self) -> bool {
        self.cell == Cell::Lstm && self.opts.c0
    }

    /// The host inputs that the layer takes, in order, with their shapes.
    fn inputs(&self) -> Vec<(Vec<f32>, Vec<usize>)> {
        let d = self.d;
        let gh = self.cell.gates() * d.hidden;
        let mut v = vec![
            (self.x.clone(), vec![d.seq, d.batch, d.input]),
            (self.w.clone(), vec![gh, d.input]),
            (self.r.clone(), vec![gh, d.hidden]),
        ];
        if self.opts.bias {
            v.push((self.b.clone(), vec![2 * gh]));
        }
        if self.opts.h0 {
            v.push((self.h0.clone(), vec![d.batch, d.hidden]));
        }
        if self.has_c0() {
            v.push((self.c0.clone(), vec![d.batch, d.hidden]));
        }
        v
    }

    /// Runs the GPU layer on `ts` (as laid out by `inputs`).
    fn gpu(&self, ts: &[Tensor]) -> RecurrentOutput {
        let (x, w, r) = (&ts[0], &ts[1], &ts[2]);
        let mut rest = ts[3..].iter();
        let b = if self.opts.bias { rest.next() } else { None };
        let h0 = if self.opts.h0 { rest.next() } else { None };
        let c0 = if self.has_c0() { rest.next() } else { None };
        match self.cell {
            Cell::Rnn => recurrent::rnn(x, w, r, b, h0),
            Cell::Lstm => recurrent::lstm(x, w, r, b, h0, c0),
            Cell::Gru(lbr) => recurrent::gru(x, w, r, b, h0, lbr),
        }
        .unwrap()
    }

    /// The reference on f64 inputs laid out like `inputs`: y, h and (LSTM) c, concatenated.
    fn reference(&self, xs: &[Vec<f64>]) -> Vec<f64> {
        let (x, w, r) = (&xs[0], &xs[1], &xs[2]);
        let mut rest = xs[3..].iter().map(Vec::as_slice);
        let b = if self.opts.bias { rest.next() } else { None };
        let h0 = if self.opts.h0 { rest.next() } else { None };
        let c0 = if self.has_c0() { rest.next() } else { None };
        let o = match self.cell {
            Cell::Rnn => reference::rnn(self.d, x, w, r, b, h0),
            Cell::Lstm => reference::lstm(self.d, x, w, r, b, h0, c0),
            Cell::Gru(lbr) => reference::gru(self.d, x, w, r, b, h0, lbr),
        };
        [o.y, o.h, o.c].concat()
    }

    fn name(&self) -> String {
        format!("{:?} {:?} {:?}", self.cell, self.d, self.opts)
    }
}

fn dims(seq: usize, batch: usize, input: usize, hidden: usize) -> Dims {
    Dims {
        seq,
        batch,
        input,
        hidden,
    }
}

fn upload(ctx: &kiln::Context, inputs: &[(Vec<f32>, Vec<usize>)]) -> Vec<Tensor> {
    inputs
        .iter()
        .map(|(v, s)| Tensor::from_slice(ctx, v, s).unwrap())
        .collect()
}

/// Runs the forward on the GPU and checks y, h and c against the reference.
fn check_forward(case: &Case, atol: f64) {
    let ctx = ctx();
    let inputs = case.inputs();
    let ts = upload(ctx, &inputs);
    let out = case.gpu(&ts);
    let d = case.d;
    let (s, b, h) = (d.seq, d.batch, d.hidden);
    assert_eq!(out.y.shape(), &[s, b, h]);
    assert_eq!(out.h.shape(), &[b, h]);
    assert_eq!(out.c.is_some(), case.cell == Cell::Lstm);
    let xs: Vec<Vec<f64>> = inputs.iter().map(|(v, _)| f64s(v)).collect();
    let want = case.reference(&xs);
    let (wy, rest) = want.split_at(s * b * h);
    let (wh, wc) = rest.split_at(b * h);
    let what = case.name();
    assert_close(
        &format!("{what}: y"),
        &out.y.to_vec::<f32>().unwrap(),
        wy,
        atol,
        1e-4,
    );
    assert_close(
        &format!("{what}: h"),
        &out.h.to_vec::<f32>().unwrap(),
        wh,
        atol,
        1e-4,
    );
    if let Some(c) = &out.c {
        assert_close(
            &format!("{what}: c"),
            &c.to_vec::<f32>().unwrap(),
            wc,
            atol,
            1e-4,
        );
    }
}

#[test]
fn recurrent_layers_match_reference_on_odd_sizes_with_and_without_optional_inputs() {
    let shapes = [
        dims(1, 1, 5, 3),
        dims(4, 3, 5, 6),
        dims(9, 3, 5, 33),
        dims(4, 1, 5, 33),
        dims(9, 1, 5, 6),
        dims(1, 3, 5, 33),
    ];
    let opts = [
        ALL,
        NONE,
        Opts {
            bias: true,
            h0: false,
            c0: true,
        },
        Opts {
            bias: false,
            h0: true,
            c0: false,
        },
    ];
    let mut seed = 1;
    for cell in CELLS {
        for d in shapes {
            for o in opts {
                seed += 1;
                check_forward(&Case::new(cell, d, o, true, seed), 2e-5);
            }
        }
    }
}

#[test]
fn recurrent_layers_match_reference_on_a_longer_sequence() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        let case = Case::new(cell, dims(64, 4, 16, 32), ALL, false, 100 + k as u64);
        check_forward(&case, 5e-5);
    }
}

#[test]
fn recurrent_layers_match_reference_when_workgroups_share_several_batch_elements() {
    // Batches of 16 and more put 2 or 4 batch elements in a workgroup; 17 and 33 leave the
    // last workgroup one element.
    for (k, cell) in CELLS.into_iter().enumerate() {
        for batch in [17, 33, 32] {
            let case = Case::new(cell, dims(5, batch, 5, 7), ALL, true, 900 + k as u64);
            check_forward(&case, 2e-5);
        }
    }
}

#[test]
fn recurrent_layers_accept_onnx_layouts_with_a_num_directions_dimension() {
    let ctx = ctx();
    let d = dims(3, 2, 5, 4);
    let case = Case::new(Cell::Lstm, d, ALL, false, 7);
    let gh = 4 * d.hidden;
    let t = |v: &[f32], s: &[usize]| Tensor::from_slice(ctx, v, s).unwrap().with_grad();
    let x = t(&case.x, &[3, 2, 5]);
    let w = t(&case.w, &[1, gh, 5]);
    let r = t(&case.r, &[1, gh, 4]);
    let b = t(&case.b, &[1, 2 * gh]);
    let h0 = t(&case.h0, &[1, 2, 4]);
    let c0 = t(&case.c0, &[1, 2, 4]);
    let out = recurrent::lstm(&x, &w, &r, Some(&b), Some(&h0), Some(&c0)).unwrap();
    let inputs = case.inputs();
    let xs: Vec<Vec<f64>> = inputs.iter().map(|(v, _)| f64s(v)).collect();
    let want = case.reference(&xs);
    assert_close(
        "lstm y, onnx layout",
        &out.y.to_vec::<f32>().unwrap(),
        &want[..3 * 2 * 4],
        2e-5,
        1e-4,
    );
    let dy = Tensor::ones(ctx, out.y.shape()).unwrap();
    let wrt = [&x, &w, &r, &b, &h0, &c0];
    let g = grad(&[&out.y], &[&dy], &wrt).unwrap();
    for (gi, ti) in g.iter().zip(wrt) {
        assert_eq!(gi.as_ref().unwrap().shape(), ti.shape());
    }
}

/// Checks every input's gradient against finite differences of the reference, with upstream
/// gradients on y only or on y, h and (LSTM) c.
fn check_gradients(case: &Case, with_state_upstream: bool, seed: u64) {
    let ctx = ctx();
    let d = case.d;
    let (s, b, h) = (d.seq, d.batch, d.hidden);
    let inputs = case.inputs();
    let ts: Vec<Tensor> = upload(ctx, &inputs)
        .into_iter()
        .map(|t| t.with_grad())
        .collect();
    let out = case.gpu(&ts);
    let mut rng = Rng::new(seed);
    let dy = rng.uniform_vec(s * b * h, -1.0, 1.0);
    let (dh, dc) = if with_state_upstream {
        (
            rng.uniform_vec(b * h, -1.0, 1.0),
            rng.uniform_vec(b * h, -1.0, 1.0),
        )
    } else {
        (vec![0.0; b * h], vec![0.0; b * h])
    };
    let mut outs = vec![&out.y];
    let dyt = Tensor::from_slice(ctx, &dy, &[s, b, h]).unwrap();
    let dht = Tensor::from_slice(ctx, &dh, &[b, h]).unwrap();
    let dct = Tensor::from_slice(ctx, &dc, &[b, h]).unwrap();
    let mut ups = vec![&dyt];
    if with_state_upstream {
        outs.push(&out.h);
        ups.push(&dht);
        if let Some(c) = &out.c {
            outs.push(c);
            ups.push(&dct);
        }
    }
    let wrt: Vec<&Tensor> = ts.iter().collect();
    let got = grad(&outs, &ups, &wrt).unwrap();

    let mut upstream = f64s(&dy);
    upstream.extend(f64s(&dh));
    if case.cell == Cell::Lstm {
        upstream.extend(f64s(&dc));
    }
    let xs: Vec<Vec<f64>> = inputs.iter().map(|(v, _)| f64s(v)).collect();
    let want = fd_vjp(|xs| case.reference(xs), &xs, &upstream, 1e-6);
    let names = ["x", "w", "r", "b", "h0", "c0"];
    let mut present: Vec<&str> = names[..3].to_vec();
    if case.opts.bias {
        present.push("b");
    }
    if case.opts.h0 {
        present.push("h0");
    }
    if case.has_c0() {
        present.push("c0");
    }
    for ((g, w), name) in got.iter().zip(&want).zip(present) {
        let g = g
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no gradient for {name}", case.name()));
        assert_close(
            &format!(
                "{} (state upstream {with_state_upstream}): d{name}",
                case.name()
            ),
            &g.to_vec::<f32>().unwrap(),
            w,
            2e-4,
            2e-3,
        );
    }
}

#[test]
fn recurrent_gradients_match_finite_differences_with_upstream_on_y_only() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        let case = Case::new(cell, dims(3, 2, 3, 4), ALL, false, 200 + k as u64);
        check_gradients(&case, false, 300 + k as u64);
    }
}

#[test]
fn recurrent_gradients_match_finite_differences_with_upstream_on_y_and_last_state() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        let case = Case::new(cell, dims(4, 3, 2, 3), ALL, false, 400 + k as u64);
        check_gradients(&case, true, 500 + k as u64);
    }
}

#[test]
fn recurrent_gradients_match_finite_differences_without_optional_inputs() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        let case = Case::new(cell, dims(2, 1, 3, 5), NONE, false, 600 + k as u64);
        check_gradients(&case, true, 700 + k as u64);
    }
}

#[test]
fn recurrent_gradients_match_finite_differences_when_workgroups_share_batch_elements() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        for batch in [17, 33] {
            let case = Case::new(cell, dims(3, batch, 2, 3), ALL, false, 800 + k as u64);
            check_gradients(&case, true, 850 + k as u64);
        }
    }
}

#[test]
fn recurrent_layers_reject_bad_shapes_with_errors() {
    let ctx = ctx();
    let z = |s: &[usize]| Tensor::zeros(ctx, s).unwrap();
    let x = z(&[3, 2, 5]);
    // r's rows must be 4·H for an LSTM.
    let e = recurrent::lstm(&x, &z(&[12, 5]), &z(&[12, 4]), None, None, None).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    // w's columns must match x's input size.
    let e = recurrent::rnn(&x, &z(&[4, 6]), &z(&[4, 4]), None, None).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    // h0 must be (B, H).
    let e = recurrent::gru(
        &x,
        &z(&[12, 5]),
        &z(&[12, 4]),
        None,
        Some(&z(&[3, 4])),
        true,
    )
    .unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    // b must be 2·G·H.
    let e = recurrent::rnn(&x, &z(&[4, 5]), &z(&[4, 4]), Some(&z(&[4])), None).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    // x must be rank 3, and the sequence non-empty.
    let e = recurrent::rnn(&z(&[2, 5]), &z(&[4, 5]), &z(&[4, 4]), None, None).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    let e = recurrent::rnn(&z(&[0, 2, 5]), &z(&[4, 5]), &z(&[4, 4]), None, None).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
}
