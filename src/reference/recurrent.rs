//! References for shaders/recurrent.wgsl: ONNX RNN, LSTM and GRU (forward direction,
//! layout 0, default activations), in f64 over f64 inputs so that finite differences of them
//! are exact enough to check gradients.
//!
//! Layouts: x (S, B, I); w (G·H, I); r (G·H, H); b (2·G·H) = [Wb, Rb]; h0, c0 (B, H);
//! gate order LSTM i, o, f, c and GRU z, r, h (ONNX). A missing b, h0 or c0 means zeros.

/// The sizes of one recurrent layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    /// Sequence length S.
    pub seq: usize,
    /// Batch size B.
    pub batch: usize,
    /// Input features I.
    pub input: usize,
    /// Hidden size H.
    pub hidden: usize,
}

/// A layer's outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// (S, B, H): every step's hidden state.
    pub y: Vec<f64>,
    /// (B, H): the last hidden state.
    pub h: Vec<f64>,
    /// (B, H): the last cell state (LSTM; empty for RNN and GRU).
    pub c: Vec<f64>,
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// `out[j] = Σ_k m[j, k] · v[k]` for the `rows` rows of `m` starting at row `first` (row length
/// `v.len()`).
fn matvec(m: &[f64], first: usize, rows: usize, v: &[f64]) -> Vec<f64> {
    let k = v.len();
    (first..first + rows)
        .map(|j| {
            m[j * k..(j + 1) * k]
                .iter()
                .zip(v)
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect()
}

/// Wb and Rb of gate row `j` (zeros without a bias).
fn biases(b: Option<&[f64]>, gh: usize, j: usize) -> (f64, f64) {
    b.map_or((0.0, 0.0), |b| (b[j], b[gh + j]))
}

/// Runs `step(t, b, x_t, h_{t-1}, state) -> h_t` over the sequence and collects the outputs.
fn run(
    d: Dims,
    x: &[f64],
    h0: Option<&[f64]>,
    c0: Option<&[f64]>,
    lstm: bool,
    mut step: impl FnMut(&[f64], &[f64], &mut [f64]) -> Vec<f64>,
) -> Output {
    let (s, bn, i, hn) = (d.seq, d.batch, d.input, d.hidden);
    assert_eq!(x.len(), s * bn * i, "x does not fill (S, B, I)");
    let mut h: Vec<Vec<f64>> = (0..bn)
        .map(|b| h0.map_or(vec![0.0; hn], |h0| h0[b * hn..(b + 1) * hn].to_vec()))
        .collect();
    let mut c: Vec<Vec<f64>> = (0..bn)
        .map(|b| c0.map_or(vec![0.0; hn], |c0| c0[b * hn..(b + 1) * hn].to_vec()))
        .collect();
    let mut y = Vec::with_capacity(s * bn * hn);
    for t in 0..s {
        for b in 0..bn {
            let xt = &x[(t * bn + b) * i..(t * bn + b + 1) * i];
            h[b] = step(xt, &h[b], &mut c[b]);
            y.extend_from_slice(&h[b]);
        }
    }
    Output {
        y,
        h: h.concat(),
        c: if lstm { c.concat() } else { Vec::new() },
    }
}

/// ONNX RNN: `h_t = tanh(W x_t + R h_{t-1} + Wb + Rb)`.
pub fn rnn(
    d: Dims,
    x: &[f64],
    w: &[f64],
    r: &[f64],
    b: Option<&[f64]>,
    h0: Option<&[f64]>,
) -> Output {
    let hn = d.hidden;
    run(d, x, h0, None, false, |xt, hp, _| {
        let wx = matvec(w, 0, hn, xt);
        let rh = matvec(r, 0, hn, hp);
        (0..hn)
            .map(|u| {
                let (wb, rb) = biases(b, hn, u);
                (wx[u] + rh[u] + wb + rb).tanh()
            })
            .collect()
    })
}

/// ONNX LSTM without peepholes: gates i, o, f (sigmoid) and c (tanh),
/// `c_t = f ⊙ c_{t-1} + i ⊙ c~`, `h_t = o ⊙ tanh(c_t)`.
pub fn lstm(
    d: Dims,
    x: &[f64],
    w: &[f64],
    r: &[f64],
    b: Option<&[f64]>,
    h0: Option<&[f64]>,
    c0: Option<&[f64]>,
) -> Output {
    let hn = d.hidden;
    let gh = 4 * hn;
    run(d, x, h0, c0, true, |xt, hp, c| {
        let wx = matvec(w, 0, gh, xt);
        let rh = matvec(r, 0, gh, hp);
        let pre = |j: usize| {
            let (wb, rb) = biases(b, gh, j);
            wx[j] + rh[j] + wb + rb
        };
        (0..hn)
            .map(|u| {
                let i = sigmoid(pre(u));
                let o = sigmoid(pre(hn + u));
                let f = sigmoid(pre(2 * hn + u));
                let g = pre(3 * hn + u).tanh();
                c[u] = f * c[u] + i * g;
                o * c[u].tanh()
            })
            .collect()
    })
}

/// ONNX GRU: `z`, `r` (sigmoid), `h~ = tanh(W_h x + R_h (r ⊙ h_{t-1}) + Rb_h + Wb_h)`, or with
/// `linear_before_reset` `tanh(W_h x + Wb_h + r ⊙ (R_h h_{t-1} + Rb_h))`;
/// `h_t = (1 - z) ⊙ h~ + z ⊙ h_{t-1}`.
pub fn gru(
    d: Dims,
    x: &[f64],
    w: &[f64],
    r: &[f64],
    b: Option<&[f64]>,
    h0: Option<&[f64]>,
    linear_before_reset: bool,
) -> Output {
    let hn = d.hidden;
    let gh = 3 * hn;
    run(d, x, h0, None, false, |xt, hp, _| {
        let wx = matvec(w, 0, gh, xt);
        let rzr = matvec(r, 0, 2 * hn, hp);
        let z: Vec<f64> = (0..hn)
            .map(|u| {
                let (wb, rb) = biases(b, gh, u);
                sigmoid(wx[u] + rzr[u] + wb + rb)
            })
            .collect();
        let rg: Vec<f64> = (0..hn)
            .map(|u| {
                let (wb, rb) = biases(b, gh, hn + u);
                sigmoid(wx[hn + u] + rzr[hn + u] + wb + rb)
            })
            .collect();
        let rh = if linear_before_reset {
            matvec(r, 2 * hn, hn, hp)
        } else {
            let m: Vec<f64> = rg.iter().zip(hp).map(|(a, b)| a * b).collect();
            matvec(r, 2 * hn, hn, &m)
        };
        (0..hn)
            .map(|u| {
                let (wb, rb) = biases(b, gh, 2 * hn + u);
                let pre = if linear_before_reset {
                    wx[2 * hn + u] + wb + rg[u] * (rh[u] + rb)
                } else {
                    wx[2 * hn + u] + rh[u] + rb + wb
                };
                let n = pre.tanh();
                (1.0 - z[u]) * n + z[u] * hp[u]
            })
            .collect()
    })
}
