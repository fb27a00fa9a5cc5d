//! PNG plots for `kiln train` and `kiln predict`, drawn with the `plotters` crate: line charts
//! (training curves), confusion matrices as heat maps, and grids of grayscale images.
//!
//! Everything renders into an in-memory RGB [`Image`]; [`Image::encode_png`] gives the PNG
//! bytes and [`Image::save_png`] writes them atomically. Text is set in DejaVu Sans, shipped in
//! `src/cli/font/` (with its licence) and registered from bytes, so no system font library is
//! needed.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context as _, Result};
use plotters::chart::SeriesAnno;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle, FontTransform};

/// Blue, the first colour of the usual plotting palette.
pub const BLUE: [u8; 3] = [31, 119, 180];
/// Orange, the second.
pub const ORANGE: [u8; 3] = [255, 127, 14];
/// Green.
pub const GREEN: [u8; 3] = [44, 160, 44];
/// Red.
pub const RED: [u8; 3] = [214, 39, 40];
/// Purple.
pub const PURPLE: [u8; 3] = [148, 103, 189];
/// Ten distinct series colours, in the usual order.
pub const PALETTE: [[u8; 3]; 10] = [
    BLUE,
    ORANGE,
    GREEN,
    RED,
    PURPLE,
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

const WHITE: [u8; 3] = [255, 255, 255];
const TEXT: [u8; 3] = [30, 30, 30];
const AXIS: [u8; 3] = [60, 60, 60];
const GRID: [u8; 3] = [225, 225, 225];

/// Largest width or height a plot may have.
const MAX_SIDE: usize = 16_384;

/// The family name the shipped font is registered under.
const FONT: &str = "sans-serif";

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// Registers the shipped font once per process (plotters keeps a global font table).
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font(
            FONT,
            FontStyle::Normal,
            include_bytes!("font/DejaVuSans.ttf"),
        )
        .is_ok()
    });
    if ok {
        Ok(())
    } else {
        bail!("the shipped font src/cli/font/DejaVuSans.ttf could not be read")
    }
}

/// Turns a plotters error (its backend error type is not `Send`) into an error naming `what`.
fn drawing<T, E: std::fmt::Display>(what: &str, r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| anyhow!("drawing {what}: {e}"))
}

/// An RGB image, 8 bits per channel, rows top to bottom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `(height, width, 3)` row-major RGB bytes.
    pub pixels: Vec<u8>,
}

impl Image {
    /// A `width x height` image filled with `background`.
    pub fn new(width: usize, height: usize, background: [u8; 3]) -> Image {
        Image {
            width,
            height,
            pixels: background.repeat(width * height),
        }
    }

    /// The colour at `(x, y)`, or `None` outside the image.
    #[cfg(test)]
    pub fn get(&self, x: usize, y: usize) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y * self.width + x) * 3;
        let p = self.pixels.get(i..i + 3)?;
        Some([p[0], p[1], p[2]])
    }

    /// Draws on the image through plotters: `draw` gets the whole image as a drawing area
    /// whose coordinates are pixels.
    fn draw(
        &mut self,
        what: &str,
        draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
    ) -> Result<()> {
        ensure_font()?;
        let size = (self.width as u32, self.height as u32);
        let root = BitMapBackend::with_buffer(&mut self.pixels, size).into_drawing_area();
        draw(&root)?;
        drawing(what, root.present())
    }

    /// The image as PNG bytes (8-bit RGB).
    pub fn encode_png(&self) -> Result<Vec<u8>> {
        let (Ok(w), Ok(h)) = (u32::try_from(self.width), u32::try_from(self.height)) else {
            bail!(
                "a {}x{} image is too large for PNG",
                self.width,
                self.height
            );
        };
        if self.pixels.len() != self.width * self.height * 3 {
            bail!(
                "a {}x{} image has {} bytes, not {}",
                self.width,
                self.height,
                self.pixels.len(),
                self.width * self.height * 3
            );
        }
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().context("encoding PNG")?;
        writer
            .write_image_data(&self.pixels)
            .context("encoding PNG")?;
        writer.finish().context("encoding PNG")?;
        Ok(out)
    }

    /// Writes the image as a PNG file, atomically (a temporary file in the same folder is
    /// renamed over `path`, so a reader never sees half a file).
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.encode_png()?;
        super::fsio::write_atomically(path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

// ---------------------------------------------------------------- line chart

/// The runs of finite values of a series as `(x, y)` points, x counting from one.
fn finite_runs(values: &[f64]) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut run = Vec::new();
    for (i, &v) in values.iter().enumerate() {
        if v.is_finite() {
            run.push((i as f64 + 1.0, v));
        } else if !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// The value range of the finite values, widened when it is empty or a single value.
fn y_range(series: &[(&str, &[f64], [u8; 3])]) -> (f64, f64) {
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        (0.0, 1.0)
    } else if hi - lo <= lo.abs().max(hi.abs()) * 1e-9 {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - d, hi + d)
    } else {
        let margin = (hi - lo) * 0.05;
        (lo - margin, hi + margin)
    }
}

/// The corner of the plot area that holds the fewest points, for the legend.
fn emptiest_corner(
    series: &[(&str, &[f64], [u8; 3])],
    (x_lo, x_hi): (f64, f64),
    (y_lo, y_hi): (f64, f64),
) -> SeriesLabelPosition {
    let mut count = [0usize; 4]; // upper right, upper left, lower right, lower left
    for s in series {
        for (x, y) in finite_runs(s.1).into_iter().flatten() {
            let right = (x - x_lo) >= (x_hi - x_lo) / 2.0;
            let upper = (y - y_lo) >= (y_hi - y_lo) / 2.0;
            count[usize::from(!upper) * 2 + usize::from(!right)] += 1;
        }
    }
    match (0..4).min_by_key(|&i| count[i]) {
        Some(1) => SeriesLabelPosition::UpperLeft,
        Some(2) => SeriesLabelPosition::LowerRight,
        Some(3) => SeriesLabelPosition::LowerLeft,
        _ => SeriesLabelPosition::UpperRight,
    }
}

type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws one run of finite points: a line, or a dot for a lone point.
fn draw_run<'c, 'a, 'b>(
    chart: &'c mut Chart<'a, 'b>,
    what: &str,
    run: Vec<(f64, f64)>,
    color: [u8; 3],
) -> Result<&'c mut SeriesAnno<'a, BitMapBackend<'b>>> {
    if run.len() == 1 {
        let dots = run
            .into_iter()
            .map(|p| Circle::new(p, 3, rgb(color).filled()));
        drawing(what, chart.draw_series(dots))
    } else {
        let line = LineSeries::new(run, rgb(color).stroke_width(2));
        drawing(what, chart.draw_series(line))
    }
}

/// A line chart of one or more series `(name, values, colour)`: point `i` of a series is drawn
/// at x = `i + 1` (epochs and steps count from one), non-finite values leave a gap and a lone
/// point shows as a dot. Draws a title, axes with ticks and labels, grid lines, axis labels and
/// a legend in the corner of the plot area that hides the fewest points. `width` and `height`
/// must be 64..=16384.
pub fn line_chart(
    series: &[(&str, &[f64], [u8; 3])],
    title: &str,
    x_label: &str,
    y_label: &str,
    width: usize,
    height: usize,
) -> Result<Image> {
    if !(64..=MAX_SIDE).contains(&width) || !(64..=MAX_SIDE).contains(&height) {
        bail!("line chart {title:?}: size {width}x{height} is outside 64..={MAX_SIDE} per side");
    }
    let n_max = series.iter().map(|s| s.1.len()).max().unwrap_or(0);
    let x_range = if n_max >= 2 {
        (1.0, n_max as f64)
    } else {
        (0.5, 1.5)
    };
    let y_range = y_range(series);
    let text = (width.min(height) as f64 / 25.0).clamp(9.0, 20.0);
    let mut img = Image::new(width, height, WHITE);
    img.draw(title, |root| {
        let mut chart = drawing(
            title,
            ChartBuilder::on(root)
                .caption(title, (FONT, text * 1.2).into_font().color(&rgb(TEXT)))
                .margin(text as u32)
                .x_label_area_size((text * 2.5) as u32)
                .y_label_area_size((text * 4.5) as u32)
                .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1),
        )?;
        drawing(
            title,
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_labels(n_max.clamp(2, 10))
                .x_label_formatter(&|x| format!("{x}"))
                .label_style((FONT, text).into_font().color(&rgb(TEXT)))
                .axis_desc_style((FONT, text).into_font().color(&rgb(TEXT)))
                .axis_style(rgb(AXIS))
                .bold_line_style(rgb(GRID))
                .light_line_style(rgb(WHITE))
                .draw(),
        )?;
        for &(name, values, color) in series {
            let style = rgb(color).stroke_width(2);
            let swatch = (text * 1.5) as i32;
            let legend =
                move |(x, y): (i32, i32)| PathElement::new(vec![(x, y), (x + swatch, y)], style);
            // The legend entry belongs to the first run drawn (or to nothing drawn).
            let mut runs = finite_runs(values).into_iter();
            let first = match runs.next() {
                Some(run) => draw_run(&mut chart, title, run, color)?,
                None => drawing(
                    title,
                    chart.draw_series(std::iter::empty::<PathElement<(f64, f64)>>()),
                )?,
            };
            first.label(name).legend(legend);
            for run in runs {
                draw_run(&mut chart, title, run, color)?;
            }
        }
        if !series.is_empty() {
            drawing(
                title,
                chart
                    .configure_series_labels()
                    .position(emptiest_corner(series, x_range, y_range))
                    .label_font((FONT, text).into_font().color(&rgb(TEXT)))
                    .background_style(rgb(WHITE).mix(0.9))
                    .border_style(rgb(AXIS))
                    .draw(),
            )?;
        }
        Ok(())
    })?;
    Ok(img)
}

// ---------------------------------------------------------------- confusion matrix

/// The "Blues" colour ramp from white (0) to dark blue (1).
fn blues(t: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 5] = [
        [247.0, 251.0, 255.0],
        [198.0, 219.0, 239.0],
        [107.0, 174.0, 214.0],
        [33.0, 113.0, 181.0],
        [8.0, 48.0, 107.0],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 4.0;
    let k = (t.floor() as usize).min(3);
    let f = t - k as f32;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    [0, 1, 2].map(|c| (a[c] + (b[c] - a[c]) * f).round() as u8)
}

/// Where a confusion matrix of `k` classes puts things, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MatrixLayout {
    /// Font size.
    text: i32,
    /// Left edge of the grid.
    left: i32,
    /// Top edge of the grid.
    top: i32,
    /// Side of one cell.
    cell: i32,
    /// Image size.
    width: i32,
    height: i32,
}

impl MatrixLayout {
    fn new(k: usize, longest_label: usize, longest_count: usize) -> MatrixLayout {
        let text: i32 = if k <= 16 { 16 } else { 10 };
        let pad = text / 2;
        // Digits and labels are about 0.6 em wide.
        let em = |chars: usize| (chars as i32 * text * 3 + 4) / 5;
        let label_w = em(longest_label).min(8 * text);
        let cell = (em(longest_count) + 2 * pad).max(text * 3);
        let side = cell * k as i32;
        let left = pad + text + pad + label_w + pad;
        let top = pad + 2 * text;
        MatrixLayout {
            text,
            left,
            top,
            cell,
            width: left + side + 2 * pad,
            height: top + side + pad + text + pad + text + pad,
        }
    }
}

/// A confusion matrix as a heat map: `matrix[true_class][predicted_class]` counts, one
/// `labels` entry per class. Each cell shows its count; its colour is the count's share of its
/// row (the true class), from white (0%) to dark blue (100%), so a well-learned class has a dark
/// diagonal cell whatever its size. Rows are true classes (top to bottom), columns predictions.
pub fn confusion_matrix_image(
    matrix: &[Vec<u64>],
    labels: &[String],
    title: &str,
) -> Result<Image> {
    let k = matrix.len();
    if k == 0 || k > 200 {
        bail!("confusion matrix {title:?}: need 1..=200 classes, got {k}");
    }
    if let Some((i, row)) = matrix.iter().enumerate().find(|(_, r)| r.len() != k) {
        bail!(
            "confusion matrix {title:?}: row {i} has {} entries, the matrix has {k} rows",
            row.len()
        );
    }
    if labels.len() != k {
        bail!(
            "confusion matrix {title:?}: {} labels for {k} classes",
            labels.len()
        );
    }
    let longest_label = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let max_count = matrix.iter().flatten().copied().max().unwrap_or(0);
    let l = MatrixLayout::new(k, longest_label, max_count.to_string().len());
    let title_w = title.chars().count() as i32 * l.text * 3 / 5 + l.text;
    let width = l.width.max(title_w);
    let mut img = Image::new(width as usize, l.height as usize, WHITE);
    let side = l.cell * k as i32;
    img.draw(title, |root| {
        let font = |c: [u8; 3]| (FONT, l.text).into_font().color(&rgb(c));
        let centred = Pos::new(HPos::Center, VPos::Center);
        let text = |s: &str, at: (i32, i32), style: TextStyle| {
            drawing(title, root.draw(&Text::new(s.to_string(), at, style)))
        };
        text(title, (width / 2, l.text), font(TEXT).pos(centred))?;
        for (r, row) in matrix.iter().enumerate() {
            let total: u64 = row.iter().sum();
            for (c, &count) in row.iter().enumerate() {
                let share = if total == 0 {
                    0.0
                } else {
                    count as f32 / total as f32
                };
                let (x, y) = (l.left + c as i32 * l.cell, l.top + r as i32 * l.cell);
                // One pixel of white between cells (plotters fills up to, not including,
                // the far corner).
                drawing(
                    title,
                    root.draw(&Rectangle::new(
                        [(x + 1, y + 1), (x + l.cell, y + l.cell)],
                        rgb(blues(share)).filled(),
                    )),
                )?;
                let ink = if share > 0.5 { WHITE } else { TEXT };
                let mid = (x + l.cell / 2, y + l.cell / 2);
                text(&count.to_string(), mid, font(ink).pos(centred))?;
            }
            // Row label: the true class, right-aligned before the row.
            let at = (l.left - l.text / 2, l.top + r as i32 * l.cell + l.cell / 2);
            text(
                &labels[r],
                at,
                font(TEXT).pos(Pos::new(HPos::Right, VPos::Center)),
            )?;
        }
        for (c, name) in labels.iter().enumerate() {
            let at = (
                l.left + c as i32 * l.cell + l.cell / 2,
                l.top + side + l.text,
            );
            text(name, at, font(TEXT).pos(centred))?;
        }
        drawing(
            title,
            root.draw(&Rectangle::new(
                [(l.left, l.top), (l.left + side, l.top + side)],
                rgb(AXIS),
            )),
        )?;
        let at = (l.left + side / 2, l.top + side + l.text * 5 / 2);
        text("predicted", at, font(TEXT).pos(centred))?;
        let up = font(TEXT).transform(FontTransform::Rotate270).pos(centred);
        text("true", (l.text, l.top + side / 2), up)?;
        Ok(())
    })?;
    Ok(img)
}

// ---------------------------------------------------------------- image grid

/// Images side by side, `per_row` to a row: `images` holds whole `rows x cols` images back to
/// back, values in `[0, 1]` shown black to white (clamped; NaN shows red), each pixel
/// magnified `scale` times, with a 2-px grey gap between tiles.
pub fn grayscale_grid(
    images: &[f32],
    rows: usize,
    cols: usize,
    per_row: usize,
    scale: usize,
) -> Result<Image> {
    let pixels = rows * cols;
    if pixels == 0 || per_row == 0 || scale == 0 {
        bail!(
            "image grid: need rows, cols, per_row and scale >= 1, got {rows}, {cols}, {per_row}, {scale}"
        );
    }
    if images.is_empty() || !images.len().is_multiple_of(pixels) {
        bail!(
            "image grid: {} values are not a whole number of {rows}x{cols} images",
            images.len()
        );
    }
    let n = images.len() / pixels;
    let (across, down) = (per_row.min(n), n.div_ceil(per_row));
    let gap = 2;
    let (tw, th) = (cols * scale, rows * scale);
    let (width, height) = (across * (tw + gap) + gap, down * (th + gap) + gap);
    if width > MAX_SIDE || height > MAX_SIDE {
        bail!("image grid: {width}x{height} is over {MAX_SIDE} pixels per side");
    }
    let mut img = Image::new(width, height, [96, 96, 104]);
    img.draw("image grid", |root| {
        for (i, image) in images.chunks_exact(pixels).enumerate() {
            let x0 = gap + (i % per_row) * (tw + gap);
            let y0 = gap + (i / per_row) * (th + gap);
            for (p, &v) in image.iter().enumerate() {
                let color = if v.is_nan() {
                    [255, 0, 0]
                } else {
                    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    [g, g, g]
                };
                let (x, y) = (
                    (x0 + (p % cols) * scale) as i32,
                    (y0 + (p / cols) * scale) as i32,
                );
                // plotters fills rectangles up to, not including, the far corner.
                let s = scale as i32;
                drawing(
                    "image grid",
                    root.draw(&Rectangle::new(
                        [(x, y), (x + s, y + s)],
                        rgb(color).filled(),
                    )),
                )?;
            }
        }
        Ok(())
    })?;
    Ok(img)
}

/// Charts, confusion matrices and image grids decode with the right size and show what they
/// should; files are written atomically. No GPU needed. Set `KILN_PLOT_OUT=dir` to keep the
/// rendered PNGs there for a look.
#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use kiln::data::procedural_digits;

    use super::*;

    /// Decodes PNG bytes: (width, height, RGB bytes).
    fn decode(png: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width as usize, info.height as usize, buf)
    }

    /// Keeps a copy of `img` in `$KILN_PLOT_OUT` when that is set.
    fn keep(img: &Image, name: &str) {
        if let Ok(dir) = std::env::var("KILN_PLOT_OUT") {
            std::fs::create_dir_all(&dir).unwrap();
            img.save_png(PathBuf::from(dir).join(name)).unwrap();
        }
    }

    fn count_color(img: &Image, color: [u8; 3]) -> usize {
        img.pixels.chunks(3).filter(|p| *p == color).count()
    }

    fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kiln-plot-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn loss_chart() -> Image {
        let train: Vec<f64> = (0..30)
            .map(|i| 2.3 * (-(i as f64) / 6.0).exp() + 0.05)
            .collect();
        let test: Vec<f64> = (0..30)
            .map(|i| 2.2 * (-(i as f64) / 7.0).exp() + 0.12)
            .collect();
        line_chart(
            &[("train loss", &train, BLUE), ("test loss", &test, ORANGE)],
            "Loss per epoch",
            "epoch",
            "cross-entropy",
            640,
            400,
        )
        .unwrap()
    }

    #[test]
    fn line_chart_decodes_with_its_size_and_shows_each_line_colour() {
        let img = loss_chart();
        keep(&img, "line_chart.png");
        let (w, h, rgb) = decode(&img.encode_png().unwrap());
        assert_eq!((w, h), (640, 400));
        assert_eq!(rgb, img.pixels);
        // Each series leaves many fully covered pixels of its colour.
        let (blue, orange) = (count_color(&img, BLUE), count_color(&img, ORANGE));
        assert!(blue > 300, "{blue} blue pixels");
        assert!(orange > 300, "{orange} orange pixels");
        // The decreasing blue line is high on the left and low on the right.
        let rows_with = |x: usize| {
            (0..h)
                .filter(|&y| img.get(x, y) == Some(BLUE))
                .collect::<Vec<_>>()
        };
        let (early, late) = (rows_with(w / 5), rows_with(w * 9 / 10));
        assert!(!early.is_empty() && !late.is_empty());
        assert!(early[0] < late[0], "early y {early:?}, late y {late:?}");
        // Text and axes are drawn in dark ink.
        let dark = img
            .pixels
            .chunks(3)
            .filter(|p| p[0] < 80 && p[1] < 80 && p[2] < 80)
            .count();
        assert!(dark > 500, "{dark} dark pixels");
    }

    #[test]
    fn line_chart_survives_odd_data() {
        let nan_gap = [1.0, f64::NAN, 3.0, f64::INFINITY, 2.0];
        let flat = [5.0; 4];
        let one = [0.25];
        let empty: [f64; 0] = [];
        for (i, series) in [&nan_gap[..], &flat, &one, &empty].into_iter().enumerate() {
            let img = line_chart(&[("s", series, BLUE)], "odd", "x", "y", 300, 200).unwrap();
            assert_eq!((img.width, img.height), (300, 200));
            keep(&img, &format!("odd_{i}.png"));
            if !series.is_empty() {
                assert!(count_color(&img, BLUE) > 0, "series {i} drew nothing");
            }
        }
        let img = line_chart(&[], "nothing", "x", "y", 200, 100).unwrap();
        assert_eq!(count_color(&img, BLUE), 0);
        let huge = [1e9, 3e9, 2e9];
        line_chart(&[("big", &huge, BLUE)], "big", "x", "y", 200, 100).unwrap();
        assert!(line_chart(&[], "t", "x", "y", 10, 100).is_err());
    }

    #[test]
    fn confusion_matrix_shades_a_large_diagonal_count_dark() {
        let labels: Vec<String> = (0..10).map(|d| d.to_string()).collect();
        let matrix: Vec<Vec<u64>> = (0..10u64)
            .map(|r| {
                (0..10u64)
                    .map(|c| {
                        if r == c {
                            180 + 7 * r
                        } else {
                            (r * 3 + c * 5) % 7
                        }
                    })
                    .collect()
            })
            .collect();
        let img = confusion_matrix_image(&matrix, &labels, "Confusion (test set)").unwrap();
        keep(&img, "confusion.png");
        let (w, h, _) = decode(&img.encode_png().unwrap());
        assert_eq!((w, h), (img.width, img.height));
        // Sample near the top-left corner of cells (3, 3) and (3, 4), away from the centred
        // count; the grid is where the layout says (one-digit labels, three-digit counts).
        let l = MatrixLayout::new(10, 1, 3);
        let at = |r: i32, c: i32| {
            let (x, y) = (l.left + c * l.cell + 4, l.top + r * l.cell + 4);
            img.get(x as usize, y as usize).unwrap()
        };
        let luminance = |p: [u8; 3]| p.iter().map(|&v| v as u32).sum::<u32>();
        let (diag, off) = (at(3, 3), at(3, 4));
        assert!(
            luminance(diag) + 300 < luminance(off),
            "diagonal {diag:?} vs off-diagonal {off:?}"
        );
        assert!(
            luminance(diag) < 300,
            "a large share should be dark blue, got {diag:?}"
        );
        // The frame runs along the grid's top edge.
        let frame = (l.left..l.left + 10 * l.cell)
            .filter(|&x| img.get(x as usize, l.top as usize) == Some(AXIS))
            .count();
        assert_eq!(frame, (10 * l.cell) as usize);
    }

    #[test]
    fn confusion_matrix_rejects_mismatched_shapes() {
        let labels: Vec<String> = vec!["a".into(), "b".into()];
        assert!(confusion_matrix_image(&[vec![1, 2], vec![3]], &labels, "t").is_err());
        assert!(confusion_matrix_image(&[vec![1, 2], vec![3, 4]], &labels[..1], "t").is_err());
        assert!(confusion_matrix_image(&[], &[], "t").is_err());
        let img = confusion_matrix_image(&[vec![0, 0], vec![0, 0]], &labels, "empty").unwrap();
        assert!(img.width > 0);
    }

    #[test]
    fn grayscale_grid_lays_out_tiles_and_maps_values_to_gray() {
        let ds = procedural_digits(30, 21);
        let img = grayscale_grid(&ds.images, 28, 28, 10, 3).unwrap();
        keep(&img, "digits.png");
        // 10 across, 3 down, 84-px tiles, 2-px gaps.
        assert_eq!((img.width, img.height), (10 * 86 + 2, 3 * 86 + 2));
        let (w, h, _) = decode(&img.encode_png().unwrap());
        assert_eq!((w, h), (img.width, img.height));
        // Tile pixels are the image values, magnified.
        let first = ds.image(0).unwrap();
        for (p, &v) in first.iter().enumerate() {
            let g = (v * 255.0).round() as u8;
            let (x, y) = (2 + (p % 28) * 3 + 1, 2 + (p / 28) * 3 + 2);
            assert_eq!(img.get(x, y), Some([g, g, g]), "pixel {p}");
        }
        // Values outside [0, 1] clamp, NaN shows red, and a partial last row is fine.
        let odd = [-1.0, 2.0, f32::NAN, 0.5];
        let img = grayscale_grid(&odd, 1, 1, 3, 1).unwrap();
        assert_eq!((img.width, img.height), (3 * 3 + 2, 2 * 3 + 2));
        assert_eq!(img.get(2, 2), Some([0, 0, 0]));
        assert_eq!(img.get(5, 2), Some([255, 255, 255]));
        assert_eq!(img.get(8, 2), Some([255, 0, 0]));
        assert_eq!(img.get(2, 5), Some([128, 128, 128]));
        assert!(grayscale_grid(&odd, 3, 1, 3, 1).is_err());
        assert!(grayscale_grid(&[], 1, 1, 3, 1).is_err());
        assert!(grayscale_grid(&odd, 1, 1, 0, 1).is_err());
    }

    #[test]
    fn save_png_writes_atomically_and_leaves_no_temporary_file() {
        let dir = scratch_dir("atomic");
        let path = dir.join("chart.png");
        let img = loss_chart();
        img.save_png(&path).unwrap();
        // Overwriting works too, and the directory holds only the final file.
        img.save_png(&path).unwrap();
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["chart.png".to_string()]);
        let (w, h, rgb) = decode(&std::fs::read(&path).unwrap());
        assert_eq!((w, h, rgb), (img.width, img.height, img.pixels.clone()));
        // A directory that does not exist is an error naming the path, and leaves nothing.
        let err = img
            .save_png(dir.join("missing/chart.png"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_shipped_font_draws_every_printable_ascii_character_distinctly() {
        let mut seen = std::collections::HashMap::new();
        for c in (32u8..127).map(char::from) {
            let mut img = Image::new(24, 24, WHITE);
            img.draw("glyph", |root| {
                let style = (FONT, 18).into_font().color(&rgb(TEXT));
                drawing("glyph", root.draw(&Text::new(c.to_string(), (3, 2), style)))
            })
            .unwrap();
            let inked = count_color(&img, WHITE) < 24 * 24;
            assert_eq!(inked, c != ' ', "{c:?}");
            if let Some(prev) = seen.insert(img.pixels.clone(), c) {
                panic!("{c:?} looks the same as {prev:?}");
            }
        }
        // A character outside the font is not a panic.
        let mut img = Image::new(40, 20, WHITE);
        img.draw("glyph", |root| {
            let style = (FONT, 12).into_font().color(&rgb(TEXT));
            drawing("glyph", root.draw(&Text::new("é\u{10FFFF}", (0, 0), style)))
        })
        .unwrap();
    }
}
