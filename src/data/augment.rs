//! Image augmentation on the CPU: shifts and rotations with bilinear resampling.

use super::Rng;

/// `image` (`rows x cols`, row-major) rotated by `degrees` about its centre (positive turns
/// clockwise on screen, since y points down) and then shifted by `(dx, dy)` pixels, resampled
/// bilinearly; what comes in from outside the image is 0 (background). Pixels missing from a
/// short `image` slice read as 0 too; the result always has `rows * cols` pixels.
///
/// ```
/// use kiln::data::augment::shift_rotate;
/// let img = [0.0, 1.0, 0.0, 0.0]; // 2x2, one bright pixel at (row 0, col 1)
/// assert_eq!(shift_rotate(&img, 2, 2, 0.0, 1.0, 0.0), vec![0.0, 0.0, 0.0, 1.0]);
/// ```
pub fn shift_rotate(
    image: &[f32],
    rows: usize,
    cols: usize,
    dx: f32,
    dy: f32,
    degrees: f32,
) -> Vec<f32> {
    let (s, c) = degrees.to_radians().sin_cos();
    let (cx, cy) = (cols as f32 / 2.0, rows as f32 / 2.0);
    let at = |r: isize, k: isize| -> f32 {
        if r < 0 || k < 0 || r as usize >= rows || k as usize >= cols {
            return 0.0;
        }
        image
            .get(r as usize * cols + k as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let mut out = vec![0.0; rows * cols];
    for (i, o) in out.iter_mut().enumerate() {
        // Output pixel centre, relative to the image centre, minus the shift; then rotate back.
        let ox = (i % cols) as f32 + 0.5 - cx - dx;
        let oy = (i / cols) as f32 + 0.5 - cy - dy;
        let sx = c * ox + s * oy + cx - 0.5;
        let sy = -s * ox + c * oy + cy - 0.5;
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let (x0, y0) = (x0 as isize, y0 as isize);
        let top = at(y0, x0) * (1.0 - fx) + at(y0, x0 + 1) * fx;
        let bottom = at(y0 + 1, x0) * (1.0 - fx) + at(y0 + 1, x0 + 1) * fx;
        *o = top * (1.0 - fy) + bottom * fy;
    }
    out
}

/// [`shift_rotate`] with a shift drawn uniformly from `[-max_shift, max_shift]` on each axis and
/// an angle drawn uniformly from `[-max_degrees, max_degrees]`.
///
/// ```
/// use kiln::data::{augment::random_shift_rotate, Rng};
/// let img = vec![0.5; 28 * 28];
/// let out = random_shift_rotate(&img, 28, 28, 2.0, 10.0, &mut Rng::new(1));
/// assert_eq!(out.len(), 28 * 28);
/// ```
pub fn random_shift_rotate(
    image: &[f32],
    rows: usize,
    cols: usize,
    max_shift: f32,
    max_degrees: f32,
    rng: &mut Rng,
) -> Vec<f32> {
    let dx = rng.uniform(-max_shift, max_shift);
    let dy = rng.uniform(-max_shift, max_shift);
    let degrees = rng.uniform(-max_degrees, max_degrees);
    shift_rotate(image, rows, cols, dx, dy, degrees)
}
