//! PNG plots drawn by a small software renderer: line charts (training curves), confusion
//! matrices as heat maps, and grids of grayscale images (samples, saliency maps).
//!
//! Everything renders into an in-memory RGB [`Image`], so it works anywhere (the browser
//! included); [`Image::encode_png`] gives the PNG bytes and, natively, [`Image::save_png`] writes
//! them atomically. Text uses a built-in 5x7 bitmap font (printable ASCII), so no font files
//! or font crates are needed.

use kiln::{Error, Result};

/// Blue, the first colour of the usual plotting palette.
pub const BLUE: [u8; 3] = [31, 119, 180];
/// Orange.
pub const ORANGE: [u8; 3] = [255, 127, 14];
/// Green.
pub const GREEN: [u8; 3] = [44, 160, 44];
/// Red.
pub const RED: [u8; 3] = [214, 39, 40];
/// Purple.
pub const PURPLE: [u8; 3] = [148, 103, 189];
/// Ten distinguishable line colours, in order.
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
        let mut pixels = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            pixels.extend_from_slice(&background);
        }
        Image {
            width,
            height,
            pixels,
        }
    }

    /// The colour at `(x, y)`, or `None` outside the image.
    #[cfg_attr(not(test), allow(dead_code))] // the tests read pixels back
    pub fn get(&self, x: usize, y: usize) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y * self.width + x) * 3;
        let p = self.pixels.get(i..i + 3)?;
        Some([p[0], p[1], p[2]])
    }

    /// Mixes `color` into pixel `(x, y)` with opacity `alpha` in `[0, 1]`; outside the image
    /// nothing happens.
    pub fn blend(&mut self, x: i64, y: i64, color: [u8; 3], alpha: f32) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let i = (y as usize * self.width + x as usize) * 3;
        let a = alpha.clamp(0.0, 1.0);
        if let Some(p) = self.pixels.get_mut(i..i + 3) {
            for (dst, &src) in p.iter_mut().zip(&color) {
                *dst = (*dst as f32 + (src as f32 - *dst as f32) * a).round() as u8;
            }
        }
    }

    /// Sets pixel `(x, y)`; outside the image nothing happens.
    pub fn set(&mut self, x: i64, y: i64, color: [u8; 3]) {
        self.blend(x, y, color, 1.0);
    }

    /// Fills the rectangle with top-left corner `(x, y)` and size `w x h`, clipped to the image.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, color: [u8; 3]) {
        let (x0, x1) = (x.max(0), (x + w).min(self.width as i64));
        let (y0, y1) = (y.max(0), (y + h).min(self.height as i64));
        for yy in y0..y1 {
            for xx in x0..x1 {
                self.set(xx, yy, color);
            }
        }
    }

    /// Outlines the rectangle with top-left corner `(x, y)` and size `w x h` with 1-px lines.
    pub fn stroke_rect(&mut self, x: i64, y: i64, w: i64, h: i64, color: [u8; 3]) {
        self.fill_rect(x, y, w, 1, color);
        self.fill_rect(x, y + h - 1, w, 1, color);
        self.fill_rect(x, y, 1, h, color);
        self.fill_rect(x + w - 1, y, 1, h, color);
    }

    /// Draws an anti-aliased line `width` pixels wide with round ends from `(x0, y0)` to
    /// `(x1, y1)` (pixel centres are at half-integers).
    pub fn draw_line(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, width: f32, color: [u8; 3]) {
        if ![x0, y0, x1, y1, width].iter().all(|v| v.is_finite()) {
            return;
        }
        let hw = width / 2.0;
        let reach = hw + 1.0;
        let bx0 = (x0.min(x1) - reach).floor().max(0.0) as i64;
        let bx1 = (x0.max(x1) + reach).ceil().min(self.width as f32) as i64;
        let by0 = (y0.min(y1) - reach).floor().max(0.0) as i64;
        let by1 = (y0.max(y1) + reach).ceil().min(self.height as f32) as i64;
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len2 = dx * dx + dy * dy;
        let inv = if len2 > 1e-12 { 1.0 / len2 } else { 0.0 };
        for y in by0..by1 {
            for x in bx0..bx1 {
                let (px, py) = (x as f32 + 0.5 - x0, y as f32 + 0.5 - y0);
                let t = ((px * dx + py * dy) * inv).clamp(0.0, 1.0);
                let d = ((px - t * dx).powi(2) + (py - t * dy).powi(2)).sqrt();
                let cover = (hw + 0.5 - d).clamp(0.0, 1.0);
                if cover > 0.0 {
                    self.blend(x, y, color, cover);
                }
            }
        }
    }

    /// Draws `text` with the built-in 5x7 font magnified `scale` times, top-left corner at
    /// `(x, y)`. Returns the width drawn (see [`text_width`]).
    pub fn draw_text(&mut self, x: i64, y: i64, text: &str, color: [u8; 3], scale: usize) -> usize {
        let s = scale.max(1) as i64;
        for (k, ch) in text.chars().enumerate() {
            let g = glyph(ch);
            let left = x + k as i64 * ADVANCE as i64 * s;
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0b10000 >> col) != 0 {
                        self.fill_rect(left + col * s, y + row as i64 * s, s, s, color);
                    }
                }
            }
        }
        text_width(text, scale)
    }

    /// Draws `text` turned a quarter turn anticlockwise (reading upwards), its baseline-left
    /// corner at `(x, y)`: the text occupies `x .. x + 7 * scale` and `y - width .. y`.
    pub fn draw_text_up(&mut self, x: i64, y: i64, text: &str, color: [u8; 3], scale: usize) {
        let s = scale.max(1) as i64;
        for (k, ch) in text.chars().enumerate() {
            let g = glyph(ch);
            let bottom = y - k as i64 * ADVANCE as i64 * s;
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0b10000 >> col) != 0 {
                        // Glyph (col, row) goes to (row, -col) after the turn.
                        self.fill_rect(x + row as i64 * s, bottom - (col + 1) * s, s, s, color);
                    }
                }
            }
        }
    }

    /// The image as PNG bytes (8-bit RGB).
    pub fn encode_png(&self) -> Result<Vec<u8>> {
        let bad = |e: png::EncodingError| Error::invalid("plot.encode_png", e.to_string());
        let (w, h) = (u32::try_from(self.width), u32::try_from(self.height));
        let (Ok(w), Ok(h)) = (w, h) else {
            return Err(Error::invalid("plot.encode_png", "image too large for PNG"));
        };
        if self.pixels.len() != self.width * self.height * 3 {
            return Err(Error::invalid(
                "plot.encode_png",
                format!(
                    "{}x{} image has {} bytes, not {}",
                    self.width,
                    self.height,
                    self.pixels.len(),
                    self.width * self.height * 3
                ),
            ));
        }
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(bad)?;
        writer.write_image_data(&self.pixels).map_err(bad)?;
        writer.finish().map_err(bad)?;
        Ok(out)
    }

    /// Writes the image as a PNG file, atomically: the bytes go to a temporary file in the same
    /// directory, which is then renamed over `path`, so a reader never sees half a file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save_png(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        use std::io::Write;
        let path = path.as_ref();
        let bytes = self.encode_png()?;
        let fail = |what: &str, e: std::io::Error| {
            Error::invalid("plot.save_png", format!("{what} {}: {e}", path.display()))
        };
        let Some(name) = path.file_name() else {
            return Err(Error::invalid(
                "plot.save_png",
                format!("{} is not a file path", path.display()),
            ));
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            // Best effort: the temporary file is garbage either way.
            let _ = std::fs::remove_file(&tmp);
            return Err(fail("cannot write", e));
        }
        Ok(())
    }
}

/// Horizontal distance from one character to the next, in font pixels (5 wide + 1 gap).
const ADVANCE: usize = 6;
/// Height of a line of text, in font pixels.
const GLYPH_HEIGHT: usize = 7;

/// Width in pixels of `text` drawn at `scale` (the trailing gap is not counted).
pub fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    (n * ADVANCE).saturating_sub(1) * scale.max(1)
}

/// The 5x7 bitmap of `ch`: seven rows, top first, the high bit of each the leftmost pixel.
/// Characters outside printable ASCII show as a hollow box.
fn glyph(ch: char) -> [u8; 7] {
    let i = ch as usize;
    if (32..127).contains(&i) {
        FONT[i - 32]
    } else {
        [
            0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111,
        ]
    }
}

/// Printable ASCII (32..=126) in a 5x7 font.
#[rustfmt::skip]
const FONT: [[u8; 7]; 95] = [
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // ' '
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100], // '!'
    [0b01010, 0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000], // '"'
    [0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010], // '#'
    [0b00100, 0b01111, 0b10100, 0b01110, 0b00101, 0b11110, 0b00100], // '$'
    [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011], // '%'
    [0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101], // '&'
    [0b01100, 0b00100, 0b01000, 0b00000, 0b00000, 0b00000, 0b00000], // '\''
    [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010], // '('
    [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000], // ')'
    [0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000], // '*'
    [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000], // '+'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000], // ','
    [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000], // '-'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100], // '.'
    [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000], // '/'
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110], // '0'
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // '1'
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111], // '2'
    [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110], // '3'
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010], // '4'
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110], // '5'
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110], // '6'
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000], // '7'
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110], // '8'
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100], // '9'
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000], // ':'
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b00100, 0b01000], // ';'
    [0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010], // '<'
    [0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000], // '='
    [0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000], // '>'
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100], // '?'
    [0b01110, 0b10001, 0b00001, 0b01101, 0b10101, 0b10101, 0b01110], // '@'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001], // 'A'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110], // 'B'
    [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110], // 'C'
    [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100], // 'D'
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111], // 'E'
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000], // 'F'
    [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111], // 'G'
    [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // 'H'
    [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 'I'
    [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100], // 'J'
    [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001], // 'K'
    [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111], // 'L'
    [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001], // 'M'
    [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001], // 'N'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // 'O'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000], // 'P'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101], // 'Q'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001], // 'R'
    [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110], // 'S'
    [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // 'T'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // 'U'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // 'V'
    [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010], // 'W'
    [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001], // 'X'
    [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100], // 'Y'
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111], // 'Z'
    [0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110], // '['
    [0b00000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00001, 0b00000], // '\\'
    [0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110], // ']'
    [0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000], // '^'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111], // '_'
    [0b01000, 0b00100, 0b00010, 0b00000, 0b00000, 0b00000, 0b00000], // '`'
    [0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111], // 'a'
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110], // 'b'
    [0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110], // 'c'
    [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111], // 'd'
    [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110], // 'e'
    [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000], // 'f'
    [0b00000, 0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // 'g'
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // 'h'
    [0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110], // 'i'
    [0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b10010, 0b01100], // 'j'
    [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010], // 'k'
    [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 'l'
    [0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001], // 'm'
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // 'n'
    [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110], // 'o'
    [0b00000, 0b00000, 0b11110, 0b10001, 0b11110, 0b10000, 0b10000], // 'p'
    [0b00000, 0b00000, 0b01101, 0b10011, 0b01111, 0b00001, 0b00001], // 'q'
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000], // 'r'
    [0b00000, 0b00000, 0b01110, 0b10000, 0b01110, 0b00001, 0b11110], // 's'
    [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110], // 't'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101], // 'u'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // 'v'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010], // 'w'
    [0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001], // 'x'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // 'y'
    [0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111], // 'z'
    [0b00010, 0b00100, 0b00100, 0b01000, 0b00100, 0b00100, 0b00010], // '{'
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // '|'
    [0b01000, 0b00100, 0b00100, 0b00010, 0b00100, 0b00100, 0b01000], // '}'
    [0b00000, 0b00000, 0b01000, 0b10101, 0b00010, 0b00000, 0b00000], // '~'
];

// ---------------------------------------------------------------- scales and ticks

/// A "nice" step (1, 2 or 5 times a power of ten) near `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    let m = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    m * p
}

/// Tick values: the multiples of `step` in `[lo, hi]` (with a little tolerance).
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last.min(first + 1000))
        .map(|k| k as f64 * step)
        .collect()
}

/// A tick label with as many decimals as `step` needs.
fn tick_label(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
    if v != 0.0 && (v.abs() >= 1e6 || step < 1e-4) {
        return format!("{v:.1e}");
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

// ---------------------------------------------------------------- line chart

/// A line chart of one or more series `(name, values, colour)`: point `i` of a series is drawn
/// at x = `i + 1` (epochs and steps count from one), non-finite values leave a gap. Draws a
/// title, axes with "nice" ticks, tick labels, grid lines, axis labels and a legend placed in
/// the corner of the plot area that hides the fewest points. `width` and `height` must be
/// 64..=16384.
pub fn line_chart(
    series: &[(&str, &[f64], [u8; 3])],
    title: &str,
    x_label: &str,
    y_label: &str,
    width: usize,
    height: usize,
) -> Result<Image> {
    if !(64..=MAX_SIDE).contains(&width) || !(64..=MAX_SIDE).contains(&height) {
        return Err(Error::invalid(
            "plot.line_chart",
            format!("size {width}x{height} is outside 64..={MAX_SIDE} per side"),
        ));
    }
    let mut img = Image::new(width, height, WHITE);
    // Text scale: the 5x7 font doubled on charts of ordinary size.
    let ts = if width.min(height) >= 360 { 2 } else { 1 };
    let line_h = (GLYPH_HEIGHT * ts) as i64;
    let pad = 6 * ts as i64;

    // Value ranges.
    let finite = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .filter(|v| v.is_finite());
    let (mut y_lo, mut y_hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if y_lo > y_hi {
        (y_lo, y_hi) = (0.0, 1.0);
    } else if y_hi - y_lo <= y_lo.abs().max(y_hi.abs()) * 1e-9 {
        let d = if y_lo == 0.0 { 1.0 } else { y_lo.abs() * 0.1 };
        (y_lo, y_hi) = (y_lo - d, y_hi + d);
    }
    let y_step = nice_step((y_hi - y_lo) / 5.0);
    let (y_lo, y_hi) = (
        (y_lo / y_step).floor() * y_step,
        (y_hi / y_step).ceil() * y_step,
    );
    let n_max = series.iter().map(|s| s.1.len()).max().unwrap_or(0);
    let (x_lo, x_hi) = if n_max >= 2 {
        (1.0, n_max as f64)
    } else {
        (0.0, 2.0)
    };
    let x_step = nice_step((x_hi - x_lo) / 8.0).max(1.0);

    // Layout: margins sized to the text they hold.
    let y_ticks = ticks(y_lo, y_hi, y_step);
    let y_labels: Vec<String> = y_ticks.iter().map(|&v| tick_label(v, y_step)).collect();
    let tick_w = y_labels
        .iter()
        .map(|s| text_width(s, ts))
        .max()
        .unwrap_or(0) as i64;
    let left = pad + line_h + pad + tick_w + pad + 4;
    let top = pad + line_h + pad * 2;
    let bottom = 4 + pad + line_h + pad + line_h + pad;
    let right = pad * 3;
    let (px0, py0) = (left, top);
    let (px1, py1) = (width as i64 - right, height as i64 - bottom);
    if px1 - px0 < 16 || py1 - py0 < 16 {
        return Err(Error::invalid(
            "plot.line_chart",
            format!("size {width}x{height} leaves no room for the plot"),
        ));
    }
    let sx = |x: f64| px0 as f64 + (x - x_lo) / (x_hi - x_lo) * (px1 - px0) as f64;
    let sy = |y: f64| py1 as f64 - (y - y_lo) / (y_hi - y_lo) * (py1 - py0) as f64;

    // Title, centred.
    let title_w = text_width(title, ts) as i64;
    img.draw_text((width as i64 - title_w) / 2, pad, title, TEXT, ts);

    // Grid, ticks and tick labels.
    for (&v, label) in y_ticks.iter().zip(&y_labels) {
        let y = sy(v).round() as i64;
        img.fill_rect(px0, y, px1 - px0, 1, GRID);
        img.fill_rect(px0 - 4, y, 4, 1, AXIS);
        let w = text_width(label, ts) as i64;
        img.draw_text(px0 - 4 - pad / 2 - w, y - line_h / 2, label, TEXT, ts);
    }
    for v in ticks(x_lo, x_hi, x_step) {
        let x = sx(v).round() as i64;
        img.fill_rect(x, py0, 1, py1 - py0, GRID);
        img.fill_rect(x, py1, 1, 4, AXIS);
        let label = tick_label(v, x_step);
        let w = text_width(&label, ts) as i64;
        img.draw_text(x - w / 2, py1 + 4 + pad / 2, &label, TEXT, ts);
    }
    // Axis frame.
    img.stroke_rect(px0, py0, px1 - px0 + 1, py1 - py0 + 1, AXIS);
    // Axis labels.
    let xw = text_width(x_label, ts) as i64;
    img.draw_text(
        (px0 + px1 - xw) / 2,
        height as i64 - pad - line_h,
        x_label,
        TEXT,
        ts,
    );
    let yw = text_width(y_label, ts) as i64;
    img.draw_text_up(pad, (py0 + py1 + yw) / 2, y_label, TEXT, ts);

    // The series: lines, plus dots when points are few enough to see.
    let lw = if ts >= 2 { 2.5 } else { 1.75 };
    for &(_, values, color) in series {
        let pts: Vec<Option<(f32, f32)>> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                v.is_finite()
                    .then(|| (sx(i as f64 + 1.0) as f32, sy(v) as f32))
            })
            .collect();
        for w in pts.windows(2) {
            if let (Some(a), Some(b)) = (w[0], w[1]) {
                img.draw_line(a.0, a.1, b.0, b.1, lw, color);
            }
        }
        let lonely = |i: usize| {
            let prev = i == 0 || pts.get(i - 1).copied().flatten().is_none();
            let next = pts.get(i + 1).copied().flatten().is_none();
            prev && next
        };
        for (i, p) in pts.iter().enumerate() {
            if let Some((x, y)) = *p {
                if pts.len() <= 40 || lonely(i) {
                    img.draw_line(x, y, x, y, lw * 2.2, color);
                }
            }
        }
    }

    // Legend in the emptiest corner of the plot area.
    let named: Vec<&(&str, &[f64], [u8; 3])> = series.iter().filter(|s| !s.0.is_empty()).collect();
    if !named.is_empty() {
        let swatch = 12 * ts as i64;
        let row_h = line_h + pad;
        let name_w = named.iter().map(|s| text_width(s.0, ts)).max().unwrap_or(0) as i64;
        let lw_box = pad + swatch + pad + name_w + pad;
        let lh_box = pad + row_h * named.len() as i64 - pad + pad;
        let m = pad + 2;
        let corners = [
            (px1 - m - lw_box, py0 + m),
            (px0 + m, py0 + m),
            (px1 - m - lw_box, py1 - m - lh_box),
            (px0 + m, py1 - m - lh_box),
        ];
        let hidden = |(bx, by): (i64, i64)| {
            series
                .iter()
                .flat_map(|s| s.1.iter().enumerate().filter(|(_, v)| v.is_finite()))
                .filter(|&(i, &v)| {
                    let (x, y) = (sx(i as f64 + 1.0) as i64, sy(v) as i64);
                    x >= bx - 4 && x <= bx + lw_box + 4 && y >= by - 4 && y <= by + lh_box + 4
                })
                .count()
        };
        let (bx, by) = corners
            .iter()
            .copied()
            .min_by_key(|&c| hidden(c))
            .unwrap_or(corners[0]);
        img.fill_rect(bx, by, lw_box, lh_box, WHITE);
        img.stroke_rect(bx, by, lw_box, lh_box, [190, 190, 190]);
        for (k, s) in named.iter().enumerate() {
            let y = by + pad + k as i64 * row_h;
            let mid = y as f32 + line_h as f32 / 2.0;
            img.draw_line(
                (bx + pad) as f32,
                mid,
                (bx + pad + swatch) as f32,
                mid,
                lw,
                s.2,
            );
            img.draw_text(bx + pad + swatch + pad, y, s.0, TEXT, ts);
        }
    }
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
        return Err(Error::invalid(
            "plot.confusion_matrix",
            format!("need 1..=200 classes, got {k}"),
        ));
    }
    if let Some((i, row)) = matrix.iter().enumerate().find(|(_, r)| r.len() != k) {
        return Err(Error::invalid(
            "plot.confusion_matrix",
            format!("row {i} has {} entries, the matrix has {k} rows", row.len()),
        ));
    }
    if labels.len() != k {
        return Err(Error::invalid(
            "plot.confusion_matrix",
            format!("{} labels for {k} classes", labels.len()),
        ));
    }
    let ts = if k <= 16 { 2 } else { 1 };
    let line_h = (GLYPH_HEIGHT * ts) as i64;
    let pad = 6 * ts as i64;
    let max_count = matrix.iter().flatten().copied().max().unwrap_or(0);
    let count_w = text_width(&max_count.to_string(), ts) as i64;
    let label_w = labels.iter().map(|l| text_width(l, ts)).max().unwrap_or(0) as i64;
    let cell = (count_w + 2 * pad)
        .max(line_h * 3)
        .max(label_w.min(120) + pad);
    let side = cell * k as i64;

    let left = pad + line_h + pad + label_w + pad;
    let top = pad + line_h + pad * 2;
    let title_w = text_width(title, ts) as i64;
    let pred = "predicted";
    let width = (left + side + pad * 2).max(title_w + 2 * pad);
    let height = top + side + pad + line_h + pad + line_h + pad;
    let mut img = Image::new(width as usize, height as usize, WHITE);
    img.draw_text((width - title_w) / 2, pad, title, TEXT, ts);

    for (r, row) in matrix.iter().enumerate() {
        let total: u64 = row.iter().sum();
        for (c, &count) in row.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                count as f32 / total as f32
            };
            let (x, y) = (left + c as i64 * cell, top + r as i64 * cell);
            img.fill_rect(x, y, cell, cell, blues(share));
            let text = count.to_string();
            let ink = if share > 0.5 { WHITE } else { TEXT };
            let w = text_width(&text, ts) as i64;
            img.draw_text(x + (cell - w) / 2, y + (cell - line_h) / 2, &text, ink, ts);
        }
        // Row label: the true class, right-aligned before the row.
        let l = &labels[r];
        let w = text_width(l, ts) as i64;
        let y = top + r as i64 * cell + (cell - line_h) / 2;
        img.draw_text(left - pad - w, y, l, TEXT, ts);
    }
    for (c, l) in labels.iter().enumerate() {
        let w = text_width(l, ts) as i64;
        img.draw_text(
            left + c as i64 * cell + (cell - w) / 2,
            top + side + pad,
            l,
            TEXT,
            ts,
        );
    }
    // Thin separators between cells and a frame.
    for i in 0..=k as i64 {
        img.fill_rect(left + i * cell, top, 1, side + 1, [255, 255, 255]);
        img.fill_rect(left, top + i * cell, side + 1, 1, [255, 255, 255]);
    }
    img.stroke_rect(left, top, side + 1, side + 1, AXIS);
    let pw = text_width(pred, ts) as i64;
    img.draw_text(
        left + (side - pw) / 2,
        top + side + pad + line_h + pad,
        pred,
        TEXT,
        ts,
    );
    let tw = text_width("true", ts) as i64;
    img.draw_text_up(pad, top + (side + tw) / 2, "true", TEXT, ts);
    Ok(img)
}

// ---------------------------------------------------------------- image grid

/// Images side by side, `per_row` to a row: `images` holds whole `rows x cols` images back to
/// back, values in `[0, 1]` shown black to white (clamped; NaN shows red), each pixel
/// magnified `scale` times, with a 2-px grey gap between tiles. For saliency maps, rescale
/// them to `[0, 1]` first.
#[cfg_attr(not(test), allow(dead_code))]
pub fn grayscale_grid(
    images: &[f32],
    rows: usize,
    cols: usize,
    per_row: usize,
    scale: usize,
) -> Result<Image> {
    let pixels = rows * cols;
    if pixels == 0 || per_row == 0 || scale == 0 {
        return Err(Error::invalid(
            "plot.grayscale_grid",
            format!(
                "need rows, cols, per_row and scale >= 1, got {rows}, {cols}, {per_row}, {scale}"
            ),
        ));
    }
    if images.is_empty() || !images.len().is_multiple_of(pixels) {
        return Err(Error::invalid(
            "plot.grayscale_grid",
            format!(
                "{} values are not a whole number of {rows}x{cols} images",
                images.len()
            ),
        ));
    }
    let n = images.len() / pixels;
    let across = per_row.min(n);
    let down = n.div_ceil(per_row);
    let gap = 2;
    let (tw, th) = (cols * scale, rows * scale);
    let width = across * (tw + gap) + gap;
    let height = down * (th + gap) + gap;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::invalid(
            "plot.grayscale_grid",
            format!("a {width}x{height} grid is over {MAX_SIDE} pixels per side"),
        ));
    }
    let mut img = Image::new(width, height, [96, 96, 104]);
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
            let (x, y) = (x0 + (p % cols) * scale, y0 + (p / cols) * scale);
            img.fill_rect(x as i64, y as i64, scale as i64, scale as i64, color);
        }
    }
    Ok(img)
}

/// Charts, confusion matrices and image grids decode with the right size and show what they
/// should; files are written atomically. No GPU needed. Set `KILN_PLOT_OUT=dir` to keep the
/// rendered PNGs there for a look.
#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{Image, BLUE, ORANGE};
    use crate::cli::plot;
    use kiln::data::procedural_digits;

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
        plot::line_chart(
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
        assert!(
            count_color(&img, BLUE) > 300,
            "{} blue pixels",
            count_color(&img, BLUE)
        );
        assert!(
            count_color(&img, ORANGE) > 300,
            "{} orange pixels",
            count_color(&img, ORANGE)
        );
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
        assert!(
            img.pixels
                .chunks(3)
                .filter(|p| p[0] < 80 && p[1] < 80 && p[2] < 80)
                .count()
                > 500
        );
    }

    #[test]
    fn line_chart_survives_odd_data() {
        let nan_gap = [1.0, f64::NAN, 3.0, f64::INFINITY, 2.0];
        let flat = [5.0; 4];
        let one = [0.25];
        let empty: [f64; 0] = [];
        for (i, series) in [&nan_gap[..], &flat, &one, &empty].into_iter().enumerate() {
            let img = plot::line_chart(&[("s", series, BLUE)], "odd", "x", "y", 300, 200).unwrap();
            assert_eq!((img.width, img.height), (300, 200));
            keep(&img, &format!("odd_{i}.png"));
            if !series.is_empty() {
                assert!(count_color(&img, BLUE) > 0, "series {i} drew nothing");
            }
        }
        let img = plot::line_chart(&[], "nothing", "x", "y", 200, 100).unwrap();
        assert_eq!(count_color(&img, BLUE), 0);
        let huge = [1e9, 3e9, 2e9];
        plot::line_chart(&[("big", &huge, BLUE)], "big", "x", "y", 200, 100).unwrap();
        assert!(plot::line_chart(&[], "t", "x", "y", 10, 100).is_err());
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
        let img = plot::confusion_matrix_image(&matrix, &labels, "Confusion (test set)").unwrap();
        keep(&img, "confusion.png");
        let (w, h, _) = decode(&img.encode_png().unwrap());
        assert_eq!((w, h), (img.width, img.height));
        // Sample near the top-left corner of cells (3, 3) and (3, 4), away from the centred count.
        let luminance = |p: [u8; 3]| p.iter().map(|&v| v as u32).sum::<u32>();
        // Locate the grid by scanning the middle row for the frame colour.
        let cells = locate_cells(&img, 10);
        let (x_diag, y_diag) = (cells.0 + 3 * cells.2 + 4, cells.1 + 3 * cells.2 + 4);
        let (x_off, y_off) = (cells.0 + 4 * cells.2 + 4, cells.1 + 3 * cells.2 + 4);
        let diag = img.get(x_diag, y_diag).unwrap();
        let off = img.get(x_off, y_off).unwrap();
        assert!(
            luminance(diag) + 300 < luminance(off),
            "diagonal {diag:?} vs off-diagonal {off:?}"
        );
        assert!(
            luminance(diag) < 300,
            "a large share should be dark blue, got {diag:?}"
        );
    }

    /// (x, y, cell size) of the confusion matrix grid: the frame's top-left corner and the cell
    /// pitch, found from the frame's dark pixels on the image's row through the first cell.
    fn locate_cells(img: &Image, k: usize) -> (usize, usize, usize) {
        let frame = [60, 60, 60];
        // Top-left corner: the first frame pixel in reading order.
        let i = (0..img.width * img.height)
            .find(|&i| img.get(i % img.width, i / img.width) == Some(frame))
            .unwrap();
        let (x0, y0) = (i % img.width, i / img.width);
        let x1 = (x0..img.width)
            .take_while(|&x| img.get(x, y0) == Some(frame))
            .last()
            .unwrap();
        (x0, y0, (x1 - x0) / k)
    }

    #[test]
    fn confusion_matrix_rejects_mismatched_shapes() {
        let labels: Vec<String> = vec!["a".into(), "b".into()];
        assert!(plot::confusion_matrix_image(&[vec![1, 2], vec![3]], &labels, "t").is_err());
        assert!(
            plot::confusion_matrix_image(&[vec![1, 2], vec![3, 4]], &labels[..1], "t").is_err()
        );
        assert!(plot::confusion_matrix_image(&[], &[], "t").is_err());
        let img =
            plot::confusion_matrix_image(&[vec![0, 0], vec![0, 0]], &labels, "empty").unwrap();
        assert!(img.width > 0);
    }

    #[test]
    fn grayscale_grid_lays_out_tiles_and_maps_values_to_gray() {
        let ds = procedural_digits(30, 21);
        let img = plot::grayscale_grid(&ds.images, 28, 28, 10, 3).unwrap();
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
        let img = plot::grayscale_grid(&odd, 1, 1, 3, 1).unwrap();
        assert_eq!((img.width, img.height), (3 * 3 + 2, 2 * 3 + 2));
        assert_eq!(img.get(2, 2), Some([0, 0, 0]));
        assert_eq!(img.get(5, 2), Some([255, 255, 255]));
        assert_eq!(img.get(8, 2), Some([255, 0, 0]));
        assert_eq!(img.get(2, 5), Some([128, 128, 128]));
        assert!(plot::grayscale_grid(&odd, 3, 1, 3, 1).is_err());
        assert!(plot::grayscale_grid(&[], 1, 1, 3, 1).is_err());
        assert!(plot::grayscale_grid(&odd, 1, 1, 0, 1).is_err());
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
        // A directory that does not exist is an error naming the path, and leaves nothing behind.
        let err = img
            .save_png(dir.join("missing/chart.png"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn text_renders_every_printable_ascii_character_distinctly() {
        let chars: Vec<char> = (32u8..127).map(char::from).collect();
        let mut seen = std::collections::HashMap::new();
        for &c in &chars {
            let mut img = Image::new(6, 7, [0, 0, 0]);
            let w = img.draw_text(0, 0, &c.to_string(), [255, 255, 255], 1);
            assert_eq!(w, 5);
            if let Some(prev) = seen.insert(img.pixels.clone(), c) {
                panic!("{c:?} looks the same as {prev:?}");
            }
        }
        assert_eq!(plot::text_width("abc", 2), 34);
        let mut img = Image::new(40, 20, [0, 0, 0]);
        img.draw_text(0, 0, "é", [255, 255, 255], 1); // unknown: a box, not a panic
        assert!(count_color(&img, [255, 255, 255]) > 0);
    }
}
