//! Recurrent layers: ONNX RNN, LSTM and GRU in the forward direction, layout 0, with default
//! activations, and their backward through time (shaders/recurrent.wgsl).
//!
//! Layouts (ONNX, with the `num_directions` dimension of 1 optional): x (S, B, I);
//! w (G·H, I); r (G·H, H); b (2·G·H) = [Wb, Rb]; h0, c0 (B, H). Gate orders are ONNX's:
//! LSTM i, o, f, c; GRU z, r, h. A missing b, h0 or c0 means zeros.
//!
//! Forward, as recorded ops: one matmul for the input projections of all steps (x·Wᵀ,
//! (S·B, G·H)); one transpose of R; then ONE dispatch for the whole recurrence. The recurrence
//! couples only the units of one batch element, so a workgroup owns 1 to 4 batch elements for
//! the whole sequence and steps through time with storage barriers; it writes each step's h_t
//! straight into Y and saves what the backward needs (gate activations, h_{t-1}, c_{t-1}) as one
//! extra output. The LSTM adds a small copy for its last h (the kernel's eight bindings are used up).
//! Missing optional inputs are filled with zeros (one small fill each).
//!
//! Backward: one dispatch runs the whole backward through time the same way (gate gradients of
//! every step, dh0, dc0); then dx = dG·W and dW = dGᵀ·x are matmuls over all steps, dR one
//! per-gate product of the gate gradients with the saved h_{t-1}, and db one column sum.
//!
//! The price of owning whole sequences is parallelism: B / BT workgroups (at least 8 where the
//! batch allows). That fills a CPU (lavapipe), but a large GPU only at large batches; a GPU
//! would also do better with more invocations per batch element. Steps are not separate
//! dispatches, so a very long sequence is one long-running dispatch.

use crate::autograd::{record, Backward};
use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, RecurrentParams};
use crate::{DType, Tensor};

/// What a recurrent layer returns.
#[derive(Clone, Debug)]
pub struct RecurrentOutput {
    /// (S, B, H): every step's hidden state.
    pub y: Tensor,
    /// (B, H): the last hidden state.
    pub h: Tensor,
    /// (B, H): the last cell state; LSTM only.
    pub c: Option<Tensor>,
}

/// The three cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Rnn,
    Lstm,
    Gru { linear_before_reset: bool },
}

impl Cell {
    fn name(self) -> &'static str {
        match self {
            Cell::Rnn => "rnn",
            Cell::Lstm => "lstm",
            Cell::Gru { .. } => "gru",
        }
    }

    /// Gates G.
    fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Lstm => 4,
            Cell::Gru { .. } => 3,
        }
    }

    /// Slots of H values per saved row (see shaders/recurrent.wgsl).
    fn slots(self) -> usize {
        match self {
            Cell::Rnn => 2,
            Cell::Lstm => 6,
            Cell::Gru { .. } => 5,
        }
    }

    /// The saved slot that multiplies each gate's rows of dR.
    fn dr_slots(self) -> [usize; 4] {
        match self {
            Cell::Rnn => [1, 0, 0, 0],
            Cell::Lstm => [5, 5, 5, 5],
            Cell::Gru {
                linear_before_reset: true,
            } => [4, 4, 4, 0],
            Cell::Gru {
                linear_before_reset: false,
            } => [4, 4, 3, 0],
        }
    }

    /// Whether the R-side gate gradients differ from the pre-activation gradients.
    fn separate_dgr(self) -> bool {
        self == Cell::Gru {
            linear_before_reset: true,
        }
    }

    fn constants(self) -> Vec<(&'static str, u32)> {
        let (cell, lbr) = match self {
            Cell::Rnn => (0, 0),
            Cell::Lstm => (1, 0),
            Cell::Gru {
                linear_before_reset,
            } => (2, u32::from(linear_before_reset)),
        };
        vec![("CELL", cell), ("LBR", lbr)]
    }
}

/// The sizes of one layer.
#[derive(Clone, Copy, Debug)]
struct Dims {
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    gates: usize,
}

impl Dims {
    fn gh(&self) -> usize {
        self.gates * self.hidden
    }
    fn rows(&self) -> usize {
        self.seq * self.batch
    }

    /// Batch elements per workgroup of the sequence kernels (`BT` in the shader, at most 4).
    /// Each R value loaded then serves BT batch elements (on lavapipe, where every load is a
    /// per-lane gather, BT = 4 halves the LSTM's time at batch 32), while at least 8
    /// workgroups stay to spread over cores.
    fn batch_tile(&self) -> usize {
        match self.batch {
            b if b >= 32 => 4,
            b if b >= 16 => 2,
            _ => 1,
        }
    }

    /// The sequence kernels' constants and workgroup count.
    fn sequence_launch(&self, cell: Cell) -> (Vec<(&'static str, u32)>, u64) {
        let bt = self.batch_tile();
        let mut c = cell.constants();
        c.push(("BT", bt as u32));
        (c, self.batch.div_ceil(bt) as u64)
    }
}

/// The parameter block (`Params` in shaders/recurrent.wgsl).
fn params(d: &Dims, rows: usize, tiles: usize, count: usize, offset: usize) -> RecurrentParams {
    RecurrentParams {
        seq: d.seq as u32,
        batch: d.batch as u32,
        hidden: d.hidden as u32,
        gates: d.gates as u32,
        rows: rows as u32,
        tiles: tiles as u32,
        count: count as u32,
        offset: offset as u32,
        slots: [0; 4],
    }
}

/// The whole forward recurrence: inputs xp, Rᵀ, b, h0, c0; outputs y, last (h_S, or c_S for
/// the LSTM), saved.
#[derive(Debug)]
struct Forward {
    cell: Cell,
    d: Dims,
}

impl Kernel for Forward {
    fn name(&self) -> &'static str {
        self.cell.name()
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let (constants, workgroups) = self.d.sequence_launch(self.cell);
        launch(
            &registry::RECURRENT_FORWARD,
            constants,
            &params(&self.d, 0, 0, 0, 0),
            workgroups,
        )
    }
}

/// The whole backward through time: inputs R, saved, dy, dh_S, dc_S; outputs dG, dh0, aux
/// (dc0 for the LSTM, the R-side gate gradients for the GRU with linear_before_reset).
#[derive(Debug)]
struct Bptt {
    cell: Cell,
    d: Dims,
}

impl Kernel for Bptt {
    fn name(&self) -> &'static str {
        "recurrent_backward"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let (constants, workgroups) = self.d.sequence_launch(self.cell);
        launch(
            &registry::RECURRENT_BACKWARD,
            constants,
            &params(&self.d, 0, 0, 0, 0),
            workgroups,
        )
    }
}

/// dR from the R-side gate gradients and the saved multipliers.
#[derive(Debug)]
struct WeightGrad {
    cell: Cell,
    d: Dims,
}

impl Kernel for WeightGrad {
    fn name(&self) -> &'static str {
        "recurrent_weight_grad"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let d = &self.d;
        let tiles = d.hidden.div_ceil(32);
        let params = RecurrentParams {
            slots: self.cell.dr_slots().map(|s| s as u32),
            ..params(d, d.rows(), tiles, 0, self.cell.slots() * d.hidden)
        };
        launch(
            &registry::RECURRENT_WEIGHT_GRAD,
            vec![],
            &params,
            (d.gates * tiles * tiles) as u64,
        )
    }
}

/// db = [column sums of dG, column sums of the R-side gate gradients].
#[derive(Debug)]
struct BiasGrad {
    d: Dims,
}

impl Kernel for BiasGrad {
    fn name(&self) -> &'static str {
        "recurrent_bias_grad"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let d = &self.d;
        launch(
            &registry::RECURRENT_BIAS_GRAD,
            vec![],
            &params(d, d.rows(), 0, 0, 0),
            groups(2 * d.gh(), 256),
        )
    }
}

/// The last step of a (S, B, H) sequence.
#[derive(Debug)]
struct Tail {
    d: Dims,
}

impl Kernel for Tail {
    fn name(&self) -> &'static str {
        "recurrent_tail"
    }

    fn launch(&self, _inputs: &[&[usize]], _out: &[usize]) -> Launch {
        let d = &self.d;
        let count = d.batch * d.hidden;
        launch(
            &registry::RECURRENT_TAIL,
            vec![],
            &params(d, 0, 0, count, (d.seq - 1) * count),
            groups(count, 256),
        )
    }
}

/// `shape` without a leading `num_directions` dimension of 1, if it has one more dimension than
/// `rank`.
fn strip(shape: &[usize], rank: usize) -> &[usize] {
    match shape {
        [1, rest @ ..] if rest.len() == rank => rest,
        s => s,
    }
}

/// Checks every operand and returns the sizes.
fn check(
    cell: Cell,
    x: &Tensor,
    w: &Tensor,
    r: &Tensor,
    b: Option<&Tensor>,
    h0: Option<&Tensor>,
    c0: Option<&Tensor>,
) -> Result<Dims> {
    let op = cell.name();
    for t in [Some(x), Some(w), Some(r), b, h0, c0].into_iter().flatten() {
        t.check_dtype(op, DType::F32)?;
    }
    let [seq, batch, input] = *x.shape() else {
        return Err(Error::invalid(
            op,
            format!("x must be (seq, batch, input), got shape {:?}", x.shape()),
        ));
    };
    let &[gh, hidden] = strip(r.shape(), 2) else {
        return Err(Error::invalid(
            op,
            format!(
                "r must be (gates·hidden, hidden), got shape {:?}",
                r.shape()
            ),
        ));
    };
    let gates = cell.gates();
    if gh != gates * hidden {
        return Err(Error::invalid(
            op,
            format!(
                "r must be ({gates}·hidden, hidden) = ({}, {hidden}), got shape {:?}",
                gates * hidden,
                r.shape()
            ),
        ));
    }
    if seq == 0 || batch == 0 || hidden == 0 {
        return Err(Error::invalid(
            op,
            format!(
                "sequence length, batch and hidden size must be at least 1, got {seq}, {batch} and {hidden}"
            ),
        ));
    }
    if strip(w.shape(), 2) != [gh, input] {
        return Err(Error::shape(op, w.shape(), x.shape()));
    }
    if let Some(b) = b {
        if strip(b.shape(), 1) != [2 * gh] {
            return Err(Error::shape(op, b.shape(), r.shape()));
        }
    }
    for s in [h0, c0].into_iter().flatten() {
        if strip(s.shape(), 2) != [batch, hidden] {
            return Err(Error::shape(op, s.shape(), &[batch, hidden]));
        }
    }
    Ok(Dims {
        seq,
        batch,
        input,
        hidden,
        gates,
    })
}

/// A detached view of `t` with `shape`, or zeros of `shape`.
fn or_zeros(ctx: &crate::Context, t: Option<&Tensor>, shape: &[usize]) -> Result<Tensor> {
    match t {
        Some(t) => t.detach().reshape(shape),
        None => Tensor::zeros(ctx, shape),
    }
}

fn forward(
    cell: Cell,
    x: &Tensor,
    w: &Tensor,
    r: &Tensor,
    b: Option<&Tensor>,
    h0: Option<&Tensor>,
    c0: Option<&Tensor>,
) -> Result<RecurrentOutput> {
    let d = check(cell, x, w, r, b, h0, c0)?;
    let ctx = x.context();
    let (s, bn, i, hn, gh) = (d.seq, d.batch, d.input, d.hidden, d.gh());
    // Detached operands: the internal ops record no gradients; this op records its own rule.
    let x2 = x.detach().reshape(&[s * bn, i])?;
    let w2 = w.detach().reshape(&[gh, i])?;
    let r2 = r.detach().reshape(&[gh, hn])?;
    let xp = x2.matmul_t(&w2, false, true)?;
    let rt = r2.t()?;
    let bias = or_zeros(ctx, b, &[2 * gh])?;
    let h0v = or_zeros(ctx, h0, &[bn, hn])?;
    let c0v = if cell == Cell::Lstm {
        or_zeros(ctx, c0, &[bn, hn])?
    } else {
        h0v.clone() // bound but unused
    };
    let outs = Tensor::from_op_multi(
        ctx,
        Forward { cell, d },
        vec![xp, rt, bias, h0v, c0v],
        vec![
            (vec![s, bn, hn], DType::F32),
            (vec![bn, hn], DType::F32),
            (vec![s, bn, cell.slots() * hn], DType::F32),
        ],
    )?;
    let [y, last, saved] = <[Tensor; 3]>::try_from(outs)
        .map_err(|_| Error::invalid(cell.name(), "forward kernel made the wrong outputs"))?;
    let mut results = if cell == Cell::Lstm {
        let h = Tensor::from_op(ctx, Tail { d }, vec![y.clone()], vec![bn, hn], DType::F32)?;
        vec![y, h, last]
    } else {
        vec![y, last]
    };

    let mut inputs = vec![x, w, r];
    inputs.extend(b);
    inputs.extend(h0);
    inputs.extend(c0);
    let rule = RecurrentBackward {
        cell,
        d,
        saved: saved.detach(),
        has_b: b.is_some(),
        has_h0: h0.is_some(),
        has_c0: c0.is_some(),
    };
    results = record(results, &inputs, rule);
    let mut it = results.into_iter();
    let (Some(y), Some(h)) = (it.next(), it.next()) else {
        return Err(Error::invalid(cell.name(), "missing outputs"));
    };
    Ok(RecurrentOutput { y, h, c: it.next() })
}

/// Backward through time of a whole layer.
#[derive(Debug)]
struct RecurrentBackward {
    cell: Cell,
    d: Dims,
    saved: Tensor,
    has_b: bool,
    has_h0: bool,
    has_c0: bool,
}

impl Backward for RecurrentBackward {
    fn name(&self) -> &'static str {
        self.cell.name()
    }

    fn backward(
        &self,
        grads: &[Option<Tensor>],
        inputs: &[Tensor],
        needs: &[bool],
    ) -> Result<Vec<Option<Tensor>>> {
        let mut out: Vec<Option<Tensor>> = vec![None; inputs.len()];
        if grads.iter().all(Option::is_none) {
            return Ok(out);
        }
        let (cell, d) = (self.cell, self.d);
        let (s, bn, i, hn, gh) = (d.seq, d.batch, d.input, d.hidden, d.gh());
        let (x, w, r) = match inputs {
            [x, w, r, ..] => (x, w, r),
            _ => return Err(Error::invalid(cell.name(), "backward lost its inputs")),
        };
        let ctx = x.context();
        let upstream = |k: usize, shape: &[usize]| -> Result<Tensor> {
            or_zeros(ctx, grads.get(k).and_then(Option::as_ref), shape)
        };
        let dy = upstream(0, &[s, bn, hn])?;
        let dh = upstream(1, &[bn, hn])?;
        let dc = if cell == Cell::Lstm {
            upstream(2, &[bn, hn])?
        } else {
            dh.clone() // bound but unused
        };
        let aux_shape = match cell {
            Cell::Lstm => vec![bn, hn],
            c if c.separate_dgr() => vec![s * bn, gh],
            _ => vec![1],
        };
        let outs = Tensor::from_op_multi(
            ctx,
            Bptt { cell, d },
            vec![r.reshape(&[gh, hn])?, self.saved.clone(), dy, dh, dc],
            vec![
                (vec![s * bn, gh], DType::F32),
                (vec![bn, hn], DType::F32),
                (aux_shape, DType::F32),
            ],
        )?;
        let [dg, dh0, aux] = <[Tensor; 3]>::try_from(outs)
            .map_err(|_| Error::invalid(cell.name(), "backward kernel made the wrong outputs"))?;
        let dgr = if cell.separate_dgr() {
            aux.clone()
        } else {
            dg.clone()
        };

        if needs[0] {
            let dx = dg.matmul(&w.reshape(&[gh, i])?)?;
            out[0] = Some(dx.reshape(x.shape())?);
        }
        if needs[1] {
            let dw = dg.matmul_t(&x.reshape(&[s * bn, i])?, true, false)?;
            out[1] = Some(dw.reshape(w.shape())?);
        }
        if needs[2] {
            let dr = Tensor::from_op(
                ctx,
                WeightGrad { cell, d },
                vec![dgr.clone(), self.saved.clone()],
                vec![gh, hn],
                DType::F32,
            )?;
            out[2] = Some(dr.reshape(r.shape())?);
        }
        let mut k = 3;
        if self.has_b {
            if needs[k] {
                let db = Tensor::from_op(
                    ctx,
                    BiasGrad { d },
                    vec![dg.clone(), dgr],
                    vec![2 * gh],
                    DType::F32,
                )?;
                out[k] = Some(db.reshape(inputs[k].shape())?);
            }
            k += 1;
        }
        if self.has_h0 {
            if needs[k] {
                out[k] = Some(dh0.reshape(inputs[k].shape())?);
            }
            k += 1;
        }
        if self.has_c0 && cell == Cell::Lstm && needs[k] {
            out[k] = Some(aux.reshape(inputs[k].shape())?);
        }
        Ok(out)
    }
}

/// ONNX RNN (forward direction, tanh): `h_t = tanh(x_t·Wᵀ + h_{t-1}·Rᵀ + Wb + Rb)`.
///
/// x (S, B, I); w (H, I); r (H, H); b (2·H) = [Wb, Rb] or `None` (zeros); h0 (B, H) or `None`
/// (zeros). A leading `num_directions` dimension of 1 (ONNX's layout) is accepted on w, r, b
/// and h0. Returns y (S, B, H) and the last h (B, H). Differentiable in every input.
///
/// Errors: non-f32 operands, shapes that do not fit together ([`Error::ShapeMismatch`] or
/// [`Error::InvalidArgument`]), and S, B or H of 0.
pub fn rnn(
    x: &Tensor,
    w: &Tensor,
    r: &Tensor,
    b: Option<&Tensor>,
    h0: Option<&Tensor>,
) -> Result<RecurrentOutput> {
    forward(Cell::Rnn, x, w, r, b, h0, None)
}

/// ONNX LSTM (forward direction, no peepholes, sigmoid/tanh/tanh), gate order i, o, f, c:
/// `c_t = f ⊙ c_{t-1} + i ⊙ c~`, `h_t = o ⊙ tanh(c_t)`.
///
/// x (S, B, I); w (4·H, I); r (4·H, H); b (8·H) = [Wb, Rb] or `None`; h0, c0 (B, H) or `None`
/// (zeros). Returns y (S, B, H), the last h and the last c (B, H). See [`rnn`] for the accepted
/// layouts and the errors.
pub fn lstm(
    x: &Tensor,
    w: &Tensor,
    r: &Tensor,
    b: Option<&Tensor>,
    h0: Option<&Tensor>,
    c0: Option<&Tensor>,
) -> Result<RecurrentOutput> {
    forward(Cell::Lstm, x, w, r, b, h0, c0)
}

/// ONNX GRU (forward direction, sigmoid/tanh), gate order z, r, h:
/// `h~ = tanh(x·W_hᵀ + (r ⊙ h_{t-1})·R_hᵀ + Rb_h + Wb_h)`, or with `linear_before_reset`
/// `tanh(x·W_hᵀ + Wb_h + r ⊙ (h_{t-1}·R_hᵀ + Rb_h))`; `h_t = (1 - z) ⊙ h~ + z ⊙ h_{t-1}`.
///
/// x (S, B, I); w (3·H, I); r (3·H, H); b (6·H) or `None`; h0 (B, H) or `None`. Returns y
/// (S, B, H) and the last h. See [`rnn`] for the accepted layouts and the errors.
pub fn gru(
    x: &Tensor,
    w: &Tensor,
    r: &Tensor,
    b: Option<&Tensor>,
    h0: Option<&Tensor>,
    linear_before_reset: bool,
) -> Result<RecurrentOutput> {
    forward(
        Cell::Gru {
            linear_before_reset,
        },
        x,
        w,
        r,
        b,
        h0,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_drops_only_a_leading_num_directions_of_one() {
        assert_eq!(strip(&[1, 12, 3], 2), &[12, 3]);
        assert_eq!(strip(&[12, 3], 2), &[12, 3]);
        assert_eq!(strip(&[2, 12, 3], 2), &[2, 12, 3]);
        assert_eq!(strip(&[1, 6], 1), &[6]);
        assert_eq!(strip(&[1, 1], 2), &[1, 1]);
    }

    #[test]
    fn every_cell_saves_h_prev_in_its_last_slot_and_multiplies_dr_by_it() {
        for cell in [
            Cell::Rnn,
            Cell::Lstm,
            Cell::Gru {
                linear_before_reset: true,
            },
        ] {
            let s = cell.dr_slots();
            assert!(s[..cell.gates()].iter().all(|&k| k == cell.slots() - 1));
        }
    }
}
