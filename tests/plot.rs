//! PNG plots: charts, confusion matrices and image grids decode with the right size and show
//! what they should; files are written atomically. No GPU needed.
//!
//! Set `KILN_PLOT_OUT=dir` to keep the rendered PNGs there for a look.

use std::path::PathBuf;

use kiln::data::procedural_digits;
use kiln::plot::{self, Image, BLUE, ORANGE};

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
    assert!(plot::confusion_matrix_image(&[vec![1, 2], vec![3, 4]], &labels[..1], "t").is_err());
    assert!(plot::confusion_matrix_image(&[], &[], "t").is_err());
    let img = plot::confusion_matrix_image(&[vec![0, 0], vec![0, 0]], &labels, "empty").unwrap();
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
