//! Softmax cross-entropy (ONNX SoftmaxCrossEntropyLoss, mean reduction) against the f64
//! reference: (N, C) and (N, C, d…) layouts, with and without class weights, the log_prob
//! output, ignored labels, shape errors, and the gradient with respect to the scores.

use crate::common;

use common::{assert_close, ctx, f64s, fd_vjp, Rng, RngExt};
use kiln::autograd::grad;
use kiln::reference::cross_entropy as reference;
use kiln::{Error, Tensor};

struct Case {
    scores: Vec<f32>,
    shape: Vec<usize>,
    labels: Vec<i32>,
    weights: Option<Vec<f32>>,
}

fn case(shape: &[usize], weighted: bool, seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let classes = shape[1];
    let positions = n / classes;
    Case {
        scores: rng.vec(n, -4.0, 4.0),
        shape: shape.to_vec(),
        labels: (0..positions)
            .map(|_| (rng.next_u64() % classes as u64) as i32)
            .collect(),
        weights: weighted.then(|| rng.uniform_vec(classes, 0.2, 2.0)),
    }
}

fn label_shape(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![shape[0]];
    s.extend_from_slice(&shape[2..]);
    s
}

impl Case {
    fn tensors(&self) -> (Tensor, Tensor, Option<Tensor>) {
        let s = Tensor::from_slice(ctx(), &self.scores, &self.shape).unwrap();
        let l = Tensor::from_slice(ctx(), &self.labels, &label_shape(&self.shape)).unwrap();
        let w = self
            .weights
            .as_ref()
            .map(|w| Tensor::from_slice(ctx(), w, &[w.len()]).unwrap());
        (s, l, w)
    }

    fn reference(&self, scores: &[f64]) -> (f64, Vec<f64>) {
        let w = self.weights.as_ref().map(|w| f64s(w));
        reference::softmax_cross_entropy(scores, &self.shape, &self.labels, w.as_deref())
    }

    fn check_forward(&self) {
        let (s, l, w) = self.tensors();
        let (loss, log_prob) = s.softmax_cross_entropy(&l, w.as_ref()).unwrap();
        assert_eq!(loss.shape(), &[] as &[usize]);
        assert_eq!(log_prob.shape(), self.shape.as_slice());
        let (want_loss, want_lp) = self.reference(&f64s(&self.scores));
        let what = format!("{:?} weighted={}", self.shape, self.weights.is_some());
        assert_close(
            &format!("loss {what}"),
            &loss.to_vec::<f32>().unwrap(),
            &[want_loss],
            1e-5,
            1e-5,
        );
        assert_close(
            &format!("log_prob {what}"),
            &log_prob.to_vec::<f32>().unwrap(),
            &want_lp,
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn cross_entropy_matches_reference_for_n_c_scores() {
    for (k, shape) in [[6usize, 5], [1, 1], [7, 1], [37, 300], [5000, 3], [3, 1100]]
        .iter()
        .enumerate()
    {
        for weighted in [false, true] {
            case(shape, weighted, k as u64 + 1).check_forward();
        }
    }
}

#[test]
fn cross_entropy_matches_reference_for_n_c_d_scores() {
    for (k, shape) in [
        vec![3usize, 4, 5],
        vec![2, 3, 4],
        vec![2, 5, 3, 7],
        vec![2, 70, 33],
        vec![3, 300, 2, 2],
    ]
    .iter()
    .enumerate()
    {
        for weighted in [false, true] {
            case(shape, weighted, k as u64 + 10).check_forward();
        }
    }
}

#[test]
fn cross_entropy_ignores_labels_outside_the_classes() {
    let mut c = case(&[6, 4, 3], true, 30);
    c.labels[0] = -100;
    c.labels[5] = 4;
    c.labels[11] = i32::MAX;
    c.check_forward();
    // And their scores get no gradient.
    let (s, l, w) = c.tensors();
    let s = s.with_grad();
    let (loss, _) = s.softmax_cross_entropy(&l, w.as_ref()).unwrap();
    loss.backward().unwrap();
    let g = s.grad().unwrap().to_vec::<f32>().unwrap();
    for (b, d) in [(0usize, 0usize), (1, 2), (3, 2)] {
        for k in 0..4 {
            assert_eq!(g[(b * 4 + k) * 3 + d], 0.0, "ignored position ({b}, {d})");
        }
    }
}

#[test]
fn cross_entropy_refuses_mismatched_shapes_and_dtypes() {
    let s = Tensor::from_slice(ctx(), &[0.5f32; 12], &[3, 4]).unwrap();
    let l = Tensor::from_slice(ctx(), &[0i32, 1, 2], &[3]).unwrap();
    let bad_l = Tensor::from_slice(ctx(), &[0i32, 1], &[2]).unwrap();
    let bad_w = Tensor::from_slice(ctx(), &[1.0f32; 3], &[3]).unwrap();
    let f32_l = Tensor::from_slice(ctx(), &[0.0f32, 1.0, 2.0], &[3]).unwrap();
    let vector = Tensor::from_slice(ctx(), &[0.5f32; 4], &[4]).unwrap();
    for (what, r) in [
        ("labels", s.softmax_cross_entropy(&bad_l, None)),
        ("weights", s.softmax_cross_entropy(&l, Some(&bad_w))),
    ] {
        match r {
            Err(Error::ShapeMismatch { op, .. }) => {
                assert_eq!(op, "softmax_cross_entropy", "{what}")
            }
            other => panic!("{what}: expected a shape error, got {other:?}"),
        }
    }
    assert!(s.softmax_cross_entropy(&f32_l, None).is_err());
    assert!(vector.softmax_cross_entropy(&l, None).is_err());
}

fn check_gradient(c: &Case, upstream_loss: f32, upstream_log_prob: bool) {
    let (s, l, w) = c.tensors();
    let s = s.with_grad();
    let (loss, log_prob) = s.softmax_cross_entropy(&l, w.as_ref()).unwrap();
    let mut rng = Rng::new(99);
    let n = c.scores.len();
    let u_lp = if upstream_log_prob {
        rng.uniform_vec(n, -1.0, 1.0)
    } else {
        vec![0.0; n]
    };
    let u_loss = Tensor::from_slice(ctx(), &[upstream_loss], &[]).unwrap();
    let got = if upstream_log_prob {
        let u = Tensor::from_slice(ctx(), &u_lp, &c.shape).unwrap();
        grad(&[&loss, &log_prob], &[&u_loss, &u], &[&s]).unwrap()
    } else {
        grad(&[&loss], &[&u_loss], &[&s]).unwrap()
    };
    let got = got[0]
        .clone()
        .expect("gradient reaches the scores")
        .to_vec::<f32>()
        .unwrap();
    let mut upstream = vec![f64::from(upstream_loss)];
    upstream.extend(f64s(&u_lp));
    let want = &fd_vjp(
        |xs| {
            let (loss, lp) = c.reference(&xs[0]);
            let mut out = vec![loss];
            out.extend(lp);
            out
        },
        &[f64s(&c.scores)],
        &upstream,
        1e-6,
    )[0];
    assert_close(
        &format!(
            "dscores {:?} weighted={} through log_prob={upstream_log_prob}",
            c.shape,
            c.weights.is_some()
        ),
        &got,
        want,
        1e-5,
        1e-4,
    );
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    for weighted in [false, true] {
        check_gradient(&case(&[5, 6], weighted, 40), 1.0, false);
        check_gradient(&case(&[3, 4, 5], weighted, 41), 0.7, false);
        // Workgroup path: 80 classes.
        check_gradient(&case(&[2, 80], weighted, 42), -1.3, false);
    }
}

#[test]
fn cross_entropy_gradient_flows_through_log_prob_too() {
    check_gradient(&case(&[4, 5, 3], true, 50), 0.5, true);
    check_gradient(&case(&[3, 7], false, 51), 0.0, true);
}
