//! The IDX format of MNIST and Fashion-MNIST, read from bytes (raw, or gzip compressed as the
//! files are usually shipped).
//!
//! Layout (all integers big-endian):
//!
//! | bytes       | meaning                                                             |
//! |-------------|---------------------------------------------------------------------|
//! | 0, 1        | zero                                                                |
//! | 2           | element type: `0x08` = u8 (the only one kiln reads)                 |
//! | 3           | rank `d`                                                            |
//! | 4 .. 4+4d   | `d` dimensions as u32                                               |
//! | rest        | exactly `product(dims)` elements, row-major                         |
//!
//! So labels start with magic `0x00000801` (rank 1: `n`) and images with `0x00000803`
//! (rank 3: `n x rows x cols`). A gzip stream is recognised by its magic bytes `1f 8b`.
//!
//! ```
//! use kiln::data::{idx, Dataset};
//! let images = idx::encode(&[2, 2, 3], &[0, 255, 0, 0, 255, 0, 9, 9, 9, 9, 9, 9])?;
//! let labels = idx::encode(&[2], &[1, 7])?;
//! let ds = Dataset::from_idx(&images, &labels)?;
//! assert_eq!((ds.n, ds.rows, ds.cols), (2, 2, 3));
//! assert_eq!(ds.images[1], 1.0);
//! assert_eq!(ds.labels, vec![1, 7]);
//! # Ok::<(), kiln::Error>(())
//! ```

use std::borrow::Cow;
use std::io::Read;

use super::Dataset;
use crate::{Error, Result};

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The element-type byte for unsigned bytes.
const DTYPE_U8: u8 = 0x08;

/// A decoded IDX file of unsigned bytes: its dimensions and its row-major data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions from the header, outermost first (`[n]` for labels, `[n, rows, cols]` for images).
    pub dims: Vec<usize>,
    /// `product(dims)` elements, row-major.
    pub data: Vec<u8>,
}

/// An [`Error::Format`] for the IDX file (or in-memory bytes) called `name`.
fn err(name: &str, reason: impl Into<String>) -> Error {
    Error::format("idx", name, reason)
}

/// The name of an IDX element-type byte, for error messages.
fn dtype_name(code: u8) -> Option<&'static str> {
    Some(match code {
        0x08 => "u8",
        0x09 => "i8",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => return None,
    })
}

/// The bytes themselves, or their decompression when they start with the gzip magic `1f 8b`.
pub fn decompress(bytes: &[u8]) -> Result<Cow<'_, [u8]>> {
    decompress_named(bytes, "idx data")
}

fn decompress_named<'a>(bytes: &'a [u8], name: &str) -> Result<Cow<'a, [u8]>> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| Error::format_caused("idx", name, "bad gzip stream", e))?;
    Ok(Cow::Owned(out))
}

/// Parses an IDX file of unsigned bytes (raw or gzip) of any rank.
///
/// Fails with a message naming the problem on: a magic number whose first two bytes are not
/// zero, an element type other than u8 (`0x08`), rank 0, a header or data shorter than the
/// header promises, or bytes left over after the data.
pub fn parse(bytes: &[u8]) -> Result<IdxArray> {
    parse_named(bytes, "idx data")
}

fn parse_named(bytes: &[u8], name: &str) -> Result<IdxArray> {
    let bytes = decompress_named(bytes, name)?;
    let Some(&[z0, z1, dtype, rank]) = bytes.get(..4) else {
        return Err(err(
            name,
            format!(
                "truncated: {} bytes is shorter than the 4-byte magic number",
                bytes.len()
            ),
        ));
    };
    let magic = u32::from_be_bytes([z0, z1, dtype, rank]);
    if (z0, z1) != (0, 0) {
        return Err(err(
            name,
            format!(
                "bad magic number 0x{magic:08x}: not an IDX file \
                 (expected 0x00000801 for labels or 0x00000803 for images)"
            ),
        ));
    }
    if dtype != DTYPE_U8 {
        return Err(err(
            name,
            match dtype_name(dtype) {
                Some(t) => format!(
                    "unsupported element type 0x{dtype:02x} ({t}) in magic 0x{magic:08x}: \
                     only unsigned bytes (0x08) are read"
                ),
                None => format!("unknown element type byte 0x{dtype:02x} in magic 0x{magic:08x}"),
            },
        ));
    }
    if rank == 0 {
        return Err(err(name, "rank 0 in the magic number: no dimensions"));
    }
    let header = 4 + 4 * rank as usize;
    let Some(dim_bytes) = bytes.get(4..header) else {
        return Err(err(
            name,
            format!(
                "truncated header: rank {rank} needs {header} bytes, the file has {}",
                bytes.len()
            ),
        ));
    };
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let Some(count) = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
        return Err(err(name, format!("dimensions {dims:?} overflow")));
    };
    let have = bytes.len() - header;
    if have < count {
        return Err(err(
            name,
            format!(
                "truncated data: dimensions {dims:?} need {count} bytes after the header, \
                 found {have}"
            ),
        ));
    }
    if have > count {
        return Err(err(
            name,
            format!(
                "trailing garbage: {} bytes after the {count} bytes that dimensions {dims:?} need",
                have - count
            ),
        ));
    }
    let data = match bytes {
        Cow::Owned(mut v) => {
            v.drain(..header);
            v
        }
        Cow::Borrowed(b) => b[header..].to_vec(),
    };
    Ok(IdxArray { dims, data })
}

fn parse_images_named(bytes: &[u8], name: &str) -> Result<IdxArray> {
    let a = parse_named(bytes, name)?;
    if a.dims.len() != 3 {
        return Err(err(
            name,
            format!(
                "images need rank 3 (n x rows x cols, magic 0x00000803), got rank {} {:?}",
                a.dims.len(),
                a.dims
            ),
        ));
    }
    if a.dims[1] == 0 || a.dims[2] == 0 {
        return Err(err(
            name,
            format!("images of size {}x{} are empty", a.dims[1], a.dims[2]),
        ));
    }
    Ok(a)
}

fn parse_labels_named(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    let a = parse_named(bytes, name)?;
    if a.dims.len() != 1 {
        return Err(err(
            name,
            format!(
                "labels need rank 1 (n, magic 0x00000801), got rank {} {:?}",
                a.dims.len(),
                a.dims
            ),
        ));
    }
    Ok(a.data)
}

/// Parses an IDX image file (magic `0x00000803`, dims `n x rows x cols`), raw or gzip.
pub fn parse_images(bytes: &[u8]) -> Result<IdxArray> {
    parse_images_named(bytes, "images")
}

/// Parses an IDX label file (magic `0x00000801`, dims `n`), raw or gzip.
pub fn parse_labels(bytes: &[u8]) -> Result<Vec<u8>> {
    parse_labels_named(bytes, "labels")
}

/// Encodes unsigned bytes as a raw IDX file with the given dimensions (the inverse of
/// [`parse`]); fails if `data.len()` is not the product of `dims` or a dimension passes u32.
pub fn encode(dims: &[usize], data: &[u8]) -> Result<Vec<u8>> {
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if count != Some(data.len()) {
        return Err(Error::invalid(
            "idx.encode",
            format!("dimensions {dims:?} do not hold {} bytes", data.len()),
        ));
    }
    let rank = u8::try_from(dims.len())
        .ok()
        .filter(|&r| r > 0)
        .ok_or_else(|| {
            Error::invalid("idx.encode", format!("rank {} is not 1..=255", dims.len()))
        })?;
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, DTYPE_U8, rank]);
    for &d in dims {
        let d = u32::try_from(d).map_err(|_| {
            Error::invalid("idx.encode", format!("dimension {d} does not fit in u32"))
        })?;
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    Ok(out)
}

/// A [`Dataset`] from an image file and a label file; `images_name` and `labels_name` name them
/// in error messages. Pixels are scaled by 1/255; `classes` is 10 or one more than the largest
/// label, whichever is larger.
pub(crate) fn dataset_from_idx(
    images: &[u8],
    labels: &[u8],
    images_name: &str,
    labels_name: &str,
) -> Result<Dataset> {
    let img = parse_images_named(images, images_name)?;
    let labels = parse_labels_named(labels, labels_name)?;
    let (n, rows, cols) = (img.dims[0], img.dims[1], img.dims[2]);
    if labels.len() != n {
        return Err(err(
            images_name,
            format!(
                "count mismatch: {images_name} holds {n} images but {labels_name} holds {} labels",
                labels.len()
            ),
        ));
    }
    let classes = labels
        .iter()
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(0)
        .max(10);
    let images = img.data.iter().map(|&b| b as f32 / 255.0).collect();
    Dataset::new(images, labels, rows, cols, classes)
}

/// Reads a whole file; fails with an [`Error::Io`] that names the path.
#[cfg(not(target_arch = "wasm32"))]
pub fn read_file(path: impl AsRef<std::path::Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))
}

/// `dir/base`, or `dir/base.gz` when only that exists.
#[cfg(not(target_arch = "wasm32"))]
fn find(dir: &std::path::Path, base: &str) -> Result<std::path::PathBuf> {
    let raw = dir.join(base);
    if raw.is_file() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{base}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(Error::io(
        "cannot open",
        raw,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("found neither {base} nor {base}.gz"),
        ),
    ))
}

/// Loads one image file and one label file from `dir` (each raw or `.gz`).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn load_pair(dir: &std::path::Path, images: &str, labels: &str) -> Result<Dataset> {
    let images = find(dir, images)?;
    let labels = find(dir, labels)?;
    dataset_from_idx(
        &read_file(&images)?,
        &read_file(&labels)?,
        &images.display().to_string(),
        &labels.display().to_string(),
    )
}
