//! Handwritten-looking digits that kiln draws itself, so training needs no downloaded files.
//!
//! Each digit 0-9 is a few strokes (line segments and elliptical arcs, like a seven-segment
//! display with curves), with small random variants per sample (a 1 with or without a flag,
//! open or closed 4, crossed 7). The strokes are bent by a random affine map (rotation ±15°,
//! scale 0.8-1.2, shear ±0.3, translation ±3 px) and a gentle smooth warp, then rendered
//! anti-aliased into 28x28 pixels with a random stroke width of 1.5-3 px and a random ink
//! strength, and uniform noise is added. Polarity and range follow MNIST: bright ink on a
//! black background, values in `[0, 1]`.
//!
//! Rendering is one pass over a small box of pixels around each segment (distance to the
//! nearest segment gives the coverage), so one core draws tens of thousands of images a second.
//!
//! ```
//! let ds = kiln::data::procedural_digits(20, 42);
//! assert_eq!(ds.class_counts(), vec![2; 10]);
//! assert!(ds.images.iter().all(|&v| (0.0..=1.0).contains(&v)));
//! ```

use super::{Dataset, Rng};

/// Side of the rendered square, as in MNIST.
pub const SIZE: usize = 28;
/// Nominal digit height in pixels before scaling (MNIST digits fit a 20x20 box).
const HEIGHT: f32 = 20.0;

/// A stroke: a polyline in glyph units (y down; the glyph spans y in [-0.5, 0.5],
/// x in about [-0.3, 0.3]).
type Stroke = Vec<[f32; 2]>;

/// Points along the ellipse centred at (cx, cy) with radii (rx, ry), from angle a0 to a1
/// degrees (0° = +x, 90° = +y, i.e. downwards), about one point per 15°.
fn arc(cx: f32, cy: f32, rx: f32, ry: f32, a0: f32, a1: f32) -> Stroke {
    let steps = ((a1 - a0).abs() / 15.0).ceil().max(1.0) as usize;
    (0..=steps)
        .map(|i| {
            let a = (a0 + (a1 - a0) * i as f32 / steps as f32).to_radians();
            [cx + rx * a.cos(), cy + ry * a.sin()]
        })
        .collect()
}

/// The strokes of `digit` with this sample's random variant choices and proportions.
fn glyph(digit: u8, rng: &mut Rng) -> Vec<Stroke> {
    // Small random changes of proportion so the same digit is not always the same shape.
    let mut j = |amount: f32| rng.uniform(-amount, amount);
    match digit {
        0 => {
            let start = j(180.0);
            vec![arc(0.0, 0.0, 0.27 + j(0.04), 0.48, start, start + 365.0)]
        }
        1 => {
            let top = [0.02 + j(0.03), -0.5];
            let mut strokes = vec![vec![top, [-0.02 + j(0.03), 0.5]]];
            if j(1.0) > 0.0 {
                strokes.push(vec![[-0.15 + j(0.03), -0.34 + j(0.05)], top]);
            }
            if j(1.0) > 0.5 {
                strokes.push(vec![[-0.16, 0.5], [0.16, 0.5]]);
            }
            strokes
        }
        2 => {
            let mut s = arc(
                0.0,
                -0.22,
                0.26 + j(0.03),
                0.27,
                200.0 + j(15.0),
                395.0 + j(10.0),
            );
            s.push([-0.27 + j(0.03), 0.5]);
            s.push([0.3 + j(0.04), 0.5 + j(0.03)]);
            vec![s]
        }
        3 => {
            let mut s = arc(0.0, -0.25, 0.24 + j(0.03), 0.25, 200.0 + j(15.0), 450.0);
            s.extend(arc(0.0, 0.24, 0.28 + j(0.03), 0.26, -90.0, 160.0 + j(15.0)));
            vec![s]
        }
        4 => {
            let bar = 0.15 + j(0.06);
            if j(1.0) > 0.0 {
                // Closed 4: a diagonal meets the upright at the top.
                let x = 0.12 + j(0.04);
                vec![
                    vec![[x, -0.5], [-0.3, bar], [0.3, bar]],
                    vec![[x, -0.5], [x, 0.5]],
                ]
            } else {
                // Open 4: two uprights joined by the bar.
                let x = 0.15 + j(0.04);
                vec![
                    vec![[-0.25 + j(0.04), -0.5], [-0.27, bar], [0.3, bar]],
                    vec![[x, -0.45], [x, 0.5]],
                ]
            }
        }
        5 => {
            let bowl = arc(
                0.0,
                0.2,
                0.28 + j(0.03),
                0.3,
                -140.0 + j(10.0),
                150.0 + j(10.0),
            );
            let mut s = vec![[0.27 + j(0.04), -0.5], [-0.18 + j(0.03), -0.5]];
            s.extend(bowl);
            vec![s]
        }
        6 => {
            let rx = 0.28 + j(0.03);
            let mut s = arc(rx - 0.06, 0.2, 2.0 * rx - 0.06, 0.7, 265.0 + j(10.0), 180.0);
            s.extend(arc(0.0, 0.2, rx, 0.29, 180.0, 540.0));
            vec![s]
        }
        7 => {
            let corner = [0.28 + j(0.03), -0.5];
            let mut strokes = vec![vec![
                [-0.27 + j(0.03), -0.5 + j(0.04)],
                corner,
                [-0.06 + j(0.08), 0.5],
            ]];
            if j(1.0) > 0.6 {
                strokes.push(vec![[-0.04, 0.02], [0.24, 0.02]]);
            }
            strokes
        }
        8 => {
            let start = 90.0 + j(30.0);
            vec![
                arc(0.0, -0.255, 0.21 + j(0.03), 0.245, start, start + 360.0),
                arc(
                    0.0,
                    0.235,
                    0.27 + j(0.03),
                    0.265,
                    start - 180.0,
                    start + 180.0,
                ),
            ]
        }
        _ => {
            let rx = 0.27 + j(0.03);
            let mut s = arc(0.0, -0.2, rx, 0.3, 0.0, 360.0);
            s.push([rx - 0.05 + j(0.06), 0.5]);
            vec![s]
        }
    }
}

/// Distortion of one sample: glyph units to pixel coordinates.
struct Warp {
    /// Linear part (row-major 2x2), includes rotation, shear, scale and glyph height.
    m: [f32; 4],
    /// Pixel position of the glyph origin.
    t: [f32; 2],
    /// Smooth warp: amplitude in glyph units and phases.
    amp: [f32; 2],
    phase: [f32; 2],
}

impl Warp {
    fn random(rng: &mut Rng) -> Self {
        let angle = rng.uniform(-15.0, 15.0).to_radians();
        let scale = rng.uniform(0.8, 1.2) * HEIGHT;
        let aspect = rng.uniform(0.85, 1.15);
        let shear = rng.uniform(-0.3, 0.3);
        let (s, c) = angle.sin_cos();
        // R * Shear * diag(scale * aspect, scale), Shear = [[1, shear], [0, 1]].
        let (sx, sy) = (scale * aspect, scale);
        let m = [c * sx, (c * shear - s) * sy, s * sx, (s * shear + c) * sy];
        let centre = SIZE as f32 / 2.0;
        let t = [
            centre + rng.uniform(-3.0, 3.0),
            centre + rng.uniform(-3.0, 3.0),
        ];
        let amp = [rng.uniform(-0.04, 0.04), rng.uniform(-0.04, 0.04)];
        let phase = [rng.uniform(0.0, 6.3), rng.uniform(0.0, 6.3)];
        Warp { m, t, amp, phase }
    }

    fn apply(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        let x = x + self.amp[0] * (3.0 * y + self.phase[0]).sin();
        let y = y + self.amp[1] * (3.0 * x + self.phase[1]).sin();
        [
            self.m[0] * x + self.m[1] * y + self.t[0],
            self.m[2] * x + self.m[3] * y + self.t[1],
        ]
    }
}

/// Lowers `d2[pixel]` to the squared distance from each pixel centre within `reach` of segment
/// `a`-`b` (pixel coordinates) to that segment.
fn stamp_segment(d2: &mut [f32], a: [f32; 2], b: [f32; 2], reach: f32) {
    let max = SIZE as f32 - 1.0;
    let x0 = (a[0].min(b[0]) - reach).floor().clamp(0.0, max) as usize;
    let x1 = (a[0].max(b[0]) + reach).ceil().clamp(0.0, max) as usize;
    let y0 = (a[1].min(b[1]) - reach).floor().clamp(0.0, max) as usize;
    let y1 = (a[1].max(b[1]) + reach).ceil().clamp(0.0, max) as usize;
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = dx * dx + dy * dy;
    let inv = if len2 > 1e-12 { 1.0 / len2 } else { 0.0 };
    for y in y0..=y1 {
        let py = y as f32 + 0.5 - a[1];
        let row = &mut d2[y * SIZE..(y + 1) * SIZE];
        for (x, d) in row.iter_mut().enumerate().take(x1 + 1).skip(x0) {
            let px = x as f32 + 0.5 - a[0];
            let t = ((px * dx + py * dy) * inv).clamp(0.0, 1.0);
            let (ex, ey) = (px - t * dx, py - t * dy);
            let e = ex * ex + ey * ey;
            if e < *d {
                *d = e;
            }
        }
    }
}

/// Renders one random sample of `digit` into `out` (`SIZE * SIZE` pixels).
fn render(digit: u8, rng: &mut Rng, out: &mut [f32]) {
    let strokes = glyph(digit, rng);
    let warp = Warp::random(rng);
    let half_width = rng.uniform(1.5, 3.0) / 2.0;
    let ink = rng.uniform(0.85, 1.0);
    let noise = rng.uniform(0.0, 0.12);
    let mut d2 = [f32::INFINITY; SIZE * SIZE];
    let reach = half_width + 1.0;
    for stroke in &strokes {
        let pts: Vec<[f32; 2]> = stroke.iter().map(|&p| warp.apply(p)).collect();
        for seg in pts.windows(2) {
            stamp_segment(&mut d2, seg[0], seg[1], reach);
        }
    }
    for (o, &d) in out.iter_mut().zip(d2.iter()) {
        // Coverage of a pixel by a stroke edge, approximated by a 1-px linear ramp.
        let cover = (half_width + 0.5 - d.sqrt()).clamp(0.0, 1.0);
        let v = cover * ink + noise * (rng.next_f32() - 0.5) * 2.0;
        *o = v.clamp(0.0, 1.0);
    }
}

/// `n` procedural 28x28 digit images with balanced classes (each digit `n / 10` or
/// `n / 10 + 1` times) in a random order, deterministic for a given `seed`.
pub fn procedural_digits(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let mut labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    rng.shuffle(&mut labels);
    let mut images = vec![0.0f32; n * SIZE * SIZE];
    for (img, &digit) in images.chunks_exact_mut(SIZE * SIZE).zip(labels.iter()) {
        render(digit, &mut rng, img);
    }
    Dataset {
        images,
        labels,
        n,
        rows: SIZE,
        cols: SIZE,
        classes: 10,
    }
}
