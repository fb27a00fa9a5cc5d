//! Data sets: the IDX reader (real MNIST bytes and crafted broken files), the procedural
//! digits, batching, augmentation and the k-fold helpers. No GPU needed.

use std::io::Write;
use std::path::PathBuf;

use kiln::data::{augment, idx, one_hot, procedural_digits, Batches, Dataset, Rng};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The full MNIST slice shipped beside the repository, when this checkout has it.
fn full_mnist_dir() -> Option<PathBuf> {
    let dir = manifest().join("../shared/data/mnist");
    dir.is_dir().then_some(dir)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A valid little image file: 3 images of 2x4.
fn small_images() -> Vec<u8> {
    let pixels: Vec<u8> = (0..24).map(|i| (i * 11) as u8).collect();
    idx::encode(&[3, 2, 4], &pixels).unwrap()
}

fn small_labels() -> Vec<u8> {
    idx::encode(&[3], &[4, 0, 9]).unwrap()
}

/// The error message for bytes that must not parse as images.
fn image_error(bytes: &[u8]) -> String {
    Dataset::from_idx(bytes, &small_labels())
        .expect_err("bad image bytes were accepted")
        .to_string()
}

fn assert_mentions(msg: &str, words: &[&str]) {
    for w in words {
        assert!(msg.contains(w), "error {msg:?} does not mention {w:?}");
    }
}

// ---------------------------------------------------------------- IDX: real data

#[test]
fn real_mnist_loads_with_the_right_counts_and_shapes() {
    let Some(dir) = full_mnist_dir() else {
        eprintln!("shared/data/mnist not present: only the fixture is tested");
        return;
    };
    let (train, test) = Dataset::load_idx_dir(&dir).unwrap();
    for (ds, n) in [(&train, 8000), (&test, 2000)] {
        assert_eq!((ds.n, ds.rows, ds.cols, ds.classes), (n, 28, 28, 10));
        assert_eq!(ds.images.len(), n * 784);
        assert_eq!(ds.labels.len(), n);
        assert!(ds.images.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(
            ds.class_counts().iter().all(|&c| c > n / 20),
            "{:?}",
            ds.class_counts()
        );
        // MNIST's mean pixel is about 0.13 and its maximum is exactly 255 / 255.
        let mean = ds.images.iter().sum::<f32>() / ds.images.len() as f32;
        assert!((0.1..0.16).contains(&mean), "mean pixel {mean}");
        assert_eq!(ds.images.iter().cloned().fold(0.0, f32::max), 1.0);
    }
}

#[test]
fn fixture_loads_raw_train_files_and_gzip_test_files() {
    let (train, test) = Dataset::load_idx_dir(manifest().join("tests/data/mnist-small")).unwrap();
    assert_eq!(
        (train.n, train.rows, train.cols, train.classes),
        (100, 28, 28, 10)
    );
    assert_eq!(
        (test.n, test.rows, test.cols, test.classes),
        (50, 28, 28, 10)
    );
    assert_eq!(&train.labels[..5], &[1, 2, 8, 3, 9]);
    assert_eq!(&test.labels[..5], &[1, 4, 2, 2, 8]);
    // Real digits: a dark background with some fully bright ink in every image.
    for i in 0..train.n {
        let img = train.image(i).unwrap();
        assert!(img.iter().cloned().fold(0.0, f32::max) > 0.9);
        assert!(img.iter().filter(|&&v| v == 0.0).count() > 784 / 2);
    }
    if let Some(dir) = full_mnist_dir() {
        let (full_train, full_test) = Dataset::load_idx_dir(dir).unwrap();
        assert_eq!(
            train,
            full_train.subset(&(0..100).collect::<Vec<_>>()).unwrap()
        );
        assert_eq!(
            test,
            full_test.subset(&(0..50).collect::<Vec<_>>()).unwrap()
        );
    }
}

#[test]
fn idx_round_trips_through_encode_raw_and_gzip() {
    let images = small_images();
    let parsed = idx::parse_images(&images).unwrap();
    assert_eq!(parsed.dims, vec![3, 2, 4]);
    assert_eq!(
        parsed.data,
        (0..24).map(|i| (i * 11) as u8).collect::<Vec<_>>()
    );
    assert_eq!(idx::parse_images(&gzip(&images)).unwrap(), parsed);
    assert_eq!(
        idx::parse_labels(&gzip(&small_labels())).unwrap(),
        vec![4, 0, 9]
    );
    assert_eq!(&images[..4], &[0, 0, 8, 3]);
    let ds = Dataset::from_idx(&gzip(&images), &small_labels()).unwrap();
    assert_eq!((ds.n, ds.rows, ds.cols, ds.classes), (3, 2, 4, 10));
    assert_eq!(ds.images[1], 11.0 / 255.0);
    assert_eq!(ds.image(2).unwrap()[0], 176.0 / 255.0);
    // More than 10 classes widen `classes`.
    let ds = Dataset::from_idx(&images, &idx::encode(&[3], &[0, 41, 2]).unwrap()).unwrap();
    assert_eq!(ds.classes, 42);
}

// ---------------------------------------------------------------- IDX: crafted errors

#[test]
fn idx_rejects_a_bad_magic_number() {
    let mut b = small_images();
    b[0] = 0x12;
    assert_mentions(
        &image_error(&b),
        &["bad magic", "0x12000803", "not an IDX file"],
    );
    // PNG bytes, say.
    assert_mentions(&image_error(b"\x89PNG\r\n\x1a\n1234"), &["bad magic"]);
}

#[test]
fn idx_rejects_unsupported_and_unknown_element_types() {
    let mut b = small_images();
    b[2] = 0x0D;
    assert_mentions(&image_error(&b), &["unsupported element type 0x0d", "f32"]);
    b[2] = 0x42;
    assert_mentions(&image_error(&b), &["unknown element type byte 0x42"]);
}

#[test]
fn idx_rejects_truncated_headers_and_data() {
    let b = small_images();
    assert_mentions(&image_error(&[]), &["truncated", "0 bytes"]);
    assert_mentions(&image_error(&b[..3]), &["truncated"]);
    assert_mentions(
        &image_error(&b[..9]),
        &["truncated header", "rank 3", "16 bytes"],
    );
    assert_mentions(
        &image_error(&b[..b.len() - 1]),
        &["truncated data", "[3, 2, 4]", "need 24 bytes", "found 23"],
    );
    // A truncated gzip stream is caught by the decompressor.
    let gz = gzip(&b);
    assert_mentions(&image_error(&gz[..gz.len() / 2]), &["gzip"]);
}

#[test]
fn idx_rejects_trailing_garbage() {
    let mut b = small_images();
    b.extend_from_slice(b"junk");
    assert_mentions(&image_error(&b), &["trailing garbage", "4 bytes"]);
    assert_mentions(&image_error(&gzip(&b)), &["trailing garbage"]);
}

#[test]
fn idx_rejects_wrong_ranks_and_empty_images() {
    // Labels where images belong and the other way round.
    assert_mentions(
        &image_error(&small_labels()),
        &["images need rank 3", "rank 1"],
    );
    let err = Dataset::from_idx(&small_images(), &small_images())
        .unwrap_err()
        .to_string();
    assert_mentions(&err, &["labels need rank 1", "rank 3"]);
    assert_mentions(
        &image_error(&idx::encode(&[3, 0, 4], &[]).unwrap()),
        &["0x4", "empty"],
    );
    let mut rank0 = small_images();
    rank0[3] = 0;
    assert_mentions(&image_error(&rank0[..4]), &["rank 0"]);
}

#[test]
fn idx_rejects_an_image_and_label_count_mismatch() {
    let labels = idx::encode(&[2], &[1, 2]).unwrap();
    let err = Dataset::from_idx(&small_images(), &labels)
        .unwrap_err()
        .to_string();
    assert_mentions(&err, &["count mismatch", "3 images", "2 labels"]);
}

#[test]
fn idx_directory_loader_names_a_missing_file() {
    let dir = std::env::temp_dir().join(format!("kiln-idx-missing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte"), small_images()).unwrap();
    let err = Dataset::load_idx_dir(&dir).unwrap_err().report();
    assert_mentions(&err, &["train-labels-idx1-ubyte.gz", "found neither"]);
    // With the labels there, the error moves on to the test files; a broken one is named.
    std::fs::write(
        dir.join("train-labels-idx1-ubyte.gz"),
        gzip(&small_labels()),
    )
    .unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), &small_images()[..20]).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), small_labels()).unwrap();
    let err = Dataset::load_idx_dir(&dir).unwrap_err().to_string();
    assert_mentions(&err, &["t10k-images-idx3-ubyte", "truncated data"]);
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), small_images()).unwrap();
    let (train, test) = Dataset::load_idx_dir(&dir).unwrap();
    assert_eq!((train.n, test.n), (3, 3));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn idx_file_errors_name_the_file_and_keep_the_cause_as_source() {
    use std::error::Error as _;
    let dir = std::env::temp_dir().join(format!("kiln-idx-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // A missing file: an io error with the path, the io::Error as its source.
    let missing = dir.join("absent-idx3-ubyte");
    let err = idx::read_file(&missing).unwrap_err();
    assert!(
        matches!(&err, kiln::Error::Io { path, .. } if *path == missing),
        "{err:?}"
    );
    assert_mentions(&err.to_string(), &["cannot read", "absent-idx3-ubyte"]);
    let io = err
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("the source of a read error is the io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);

    // A missing file in a data folder is a NotFound io error too.
    let err = Dataset::load_idx_dir(&dir).unwrap_err();
    let io = err
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("a missing IDX file has an io::Error source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);

    // A damaged gzip file: a format error naming the file, the gzip error as its source.
    let mut gz = gzip(&small_images());
    gz.truncate(gz.len() / 2);
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), small_labels()).unwrap();
    let err = Dataset::load_idx_dir(&dir).unwrap_err();
    match &err {
        kiln::Error::Format {
            format,
            file,
            reason,
            ..
        } => {
            assert_eq!(*format, "idx");
            assert_eq!(*file, dir.join("train-images-idx3-ubyte.gz"));
            assert_eq!(reason, "bad gzip stream");
        }
        other => panic!("not a format error: {other:?}"),
    }
    assert_mentions(&err.to_string(), &["train-images-idx3-ubyte.gz", "gzip"]);
    let cause = err.source().expect("a gzip failure keeps its cause");
    assert!(cause.is::<std::io::Error>(), "{cause:?}");
    assert!(
        err.report().ends_with(&cause.to_string()),
        "{}",
        err.report()
    );

    // A malformed header found by kiln itself has no deeper cause.
    let err = image_error(b"\x89PNG\r\n\x1a\n1234");
    assert_mentions(&err, &["idx images", "bad magic"]);
    let err = Dataset::from_idx(b"\x89PNG\r\n\x1a\n1234", &small_labels()).unwrap_err();
    assert!(err.source().is_none(), "{err:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn encode_rejects_data_that_does_not_fit_the_dimensions() {
    assert!(idx::encode(&[2, 2], &[1, 2, 3]).is_err());
    assert!(idx::encode(&[], &[1]).is_err());
    assert!(idx::encode(&[1usize << 33], &[]).is_err());
}

// ---------------------------------------------------------------- procedural digits

fn class_means(ds: &Dataset) -> Vec<Vec<f64>> {
    let p = ds.pixels();
    let mut sums = vec![vec![0.0f64; p]; ds.classes];
    for i in 0..ds.n {
        let s = &mut sums[ds.labels[i] as usize];
        for (a, &v) in s.iter_mut().zip(ds.image(i).unwrap()) {
            *a += v as f64;
        }
    }
    let counts = ds.class_counts();
    for (s, &c) in sums.iter_mut().zip(&counts) {
        s.iter_mut().for_each(|v| *v /= c.max(1) as f64);
    }
    sums
}

fn dist2(a: &[f64], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x - y as f64).powi(2)).sum()
}

#[test]
fn procedural_digits_are_deterministic_per_seed() {
    let a = procedural_digits(50, 9);
    assert_eq!(a, procedural_digits(50, 9));
    let b = procedural_digits(50, 10);
    assert_ne!(a.images, b.images);
    assert_ne!(a.labels, b.labels, "label order should depend on the seed");
}

#[test]
fn procedural_digits_have_balanced_classes() {
    assert_eq!(procedural_digits(1000, 1).class_counts(), vec![100; 10]);
    assert_eq!(
        procedural_digits(25, 2).class_counts(),
        vec![3, 3, 3, 3, 3, 2, 2, 2, 2, 2]
    );
    assert_eq!(procedural_digits(0, 2).n, 0);
    // Not sorted by class: the first ten are not simply 0..9.
    assert_ne!(
        &procedural_digits(100, 3).labels[..10],
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    );
}

#[test]
fn procedural_digits_look_like_mnist() {
    let ds = procedural_digits(500, 4);
    assert_eq!((ds.n, ds.rows, ds.cols, ds.classes), (500, 28, 28, 10));
    assert!(ds.images.iter().all(|v| (0.0..=1.0).contains(v)));
    for i in 0..ds.n {
        let img = ds.image(i).unwrap();
        let max = img.iter().cloned().fold(0.0, f32::max);
        let ink = img.iter().filter(|&&v| v > 0.5).count();
        assert!(max > 0.8, "image {i} has no bright ink (max {max})");
        assert!((20..400).contains(&ink), "image {i} has {ink} inked pixels");
        // Bright digit on a dark background, and the digit stays inside the frame.
        let border: f32 = (0..28)
            .map(|k| img[k] + img[27 * 28 + k] + img[k * 28] + img[k * 28 + 27])
            .sum();
        assert!(border / 112.0 < 0.2, "image {i} touches the border");
    }
    let mean = ds.images.iter().sum::<f32>() / ds.images.len() as f32;
    assert!((0.05..0.3).contains(&mean), "mean pixel {mean}");
}

#[test]
fn procedural_digit_classes_have_clearly_different_means() {
    let ds = procedural_digits(2000, 5);
    let means = class_means(&ds);
    let norm = |m: &[f64]| m.iter().map(|v| v * v).sum::<f64>().sqrt();
    for a in 0..10 {
        for b in a + 1..10 {
            let d: f64 = means[a]
                .iter()
                .zip(&means[b])
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f64>()
                .sqrt();
            let scale = norm(&means[a]).max(norm(&means[b]));
            assert!(
                d > 0.15 * scale,
                "classes {a} and {b} have mean images only {d:.3} apart (norm {scale:.3})"
            );
        }
    }
}

#[test]
fn nearest_class_mean_learns_procedural_digits_well_above_chance() {
    let train = procedural_digits(3000, 11);
    let test = procedural_digits(1000, 12);
    let means = class_means(&train);
    let correct = (0..test.n)
        .filter(|&i| {
            let img = test.image(i).unwrap();
            let guess = (0..10)
                .min_by(|&a, &b| dist2(&means[a], img).total_cmp(&dist2(&means[b], img)))
                .unwrap();
            guess == test.labels[i] as usize
        })
        .count();
    let acc = correct as f64 / test.n as f64;
    eprintln!("nearest-class-mean accuracy on fresh procedural digits: {acc:.3}");
    assert!(acc > 0.5, "accuracy {acc}");
}

// ---------------------------------------------------------------- batches

#[test]
fn batches_cover_every_image_once_with_the_last_batch_short() {
    let ds = procedural_digits(23, 6);
    let batches = Batches::new(&ds, 5).unwrap();
    assert_eq!(batches.len(), 5);
    let all: Vec<_> = batches.collect();
    assert_eq!(
        all.iter().map(|(_, y)| y.len()).collect::<Vec<_>>(),
        vec![5, 5, 5, 5, 3]
    );
    let images: Vec<f32> = all.iter().flat_map(|(x, _)| x.iter().copied()).collect();
    let labels: Vec<u8> = all.iter().flat_map(|(_, y)| y.iter().copied()).collect();
    assert_eq!(images, ds.images);
    assert_eq!(labels, ds.labels);
    let dropped = Batches::new(&ds, 5).unwrap().drop_last(true);
    assert_eq!(dropped.len(), 4);
    assert_eq!(dropped.count(), 4);
    assert_eq!(Batches::new(&ds, 100).unwrap().drop_last(true).count(), 0);
    assert_eq!(Batches::new(&ds, 100).unwrap().count(), 1);
    assert!(Batches::new(&ds, 0).is_err());
}

/// Which stored image each batch row is, by matching pixels.
fn order_of(ds: &Dataset, batches: Batches) -> Vec<usize> {
    let p = ds.pixels();
    batches
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len() * p);
            x.chunks(p)
                .zip(y)
                .map(|(img, l)| {
                    let i = (0..ds.n).find(|&i| ds.image(i).unwrap() == img).unwrap();
                    assert_eq!(ds.labels[i], l, "label travelled apart from its image");
                    i
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn shuffled_batches_are_a_seeded_permutation_that_changes_per_epoch() {
    let ds = procedural_digits(40, 7);
    let e0 = order_of(&ds, Batches::new(&ds, 8).unwrap().shuffle(1, 0));
    let mut sorted = e0.clone();
    sorted.sort();
    assert_eq!(sorted, (0..40).collect::<Vec<_>>());
    assert_ne!(e0, sorted, "the shuffle left the order unchanged");
    assert_eq!(
        e0,
        order_of(&ds, Batches::new(&ds, 8).unwrap().shuffle(1, 0))
    );
    assert_ne!(
        e0,
        order_of(&ds, Batches::new(&ds, 8).unwrap().shuffle(1, 1))
    );
    assert_ne!(
        e0,
        order_of(&ds, Batches::new(&ds, 8).unwrap().shuffle(2, 0))
    );
}

#[test]
fn augmented_batches_keep_labels_and_change_images() {
    let ds = procedural_digits(16, 8);
    let plain: Vec<_> = Batches::new(&ds, 16).unwrap().collect();
    let aug: Vec<_> = Batches::new(&ds, 16)
        .unwrap()
        .augment(2.0, 10.0, 3, 0)
        .collect();
    assert_eq!(plain[0].1, aug[0].1);
    assert_eq!(plain[0].0.len(), aug[0].0.len());
    assert_ne!(plain[0].0, aug[0].0);
    let again: Vec<_> = Batches::new(&ds, 16)
        .unwrap()
        .augment(2.0, 10.0, 3, 0)
        .collect();
    assert_eq!(aug, again);
}

#[test]
fn one_hot_marks_each_label_and_rejects_out_of_range_labels() {
    let y = one_hot(&[3, 0, 9], 10).unwrap();
    assert_eq!(y.len(), 30);
    assert_eq!(y.iter().sum::<f32>(), 3.0);
    assert_eq!((y[3], y[10], y[29]), (1.0, 1.0, 1.0));
    let err = one_hot(&[1, 10], 10).unwrap_err().to_string();
    assert_mentions(&err, &["label 10", "position 1"]);
}

// ---------------------------------------------------------------- augmentation

#[test]
fn shift_rotate_is_identity_without_motion_and_moves_by_whole_pixels() {
    let mut rng = Rng::new(3);
    let img: Vec<f32> = (0..5 * 7).map(|_| rng.next_f32()).collect();
    let same = augment::shift_rotate(&img, 5, 7, 0.0, 0.0, 0.0);
    for (a, b) in same.iter().zip(&img) {
        assert!((a - b).abs() < 1e-6);
    }
    // Two right, one up: out[r][c] = img[r + 1][c - 2], zero where that is outside.
    let moved = augment::shift_rotate(&img, 5, 7, 2.0, -1.0, 0.0);
    for r in 0..5 {
        for c in 0..7 {
            let want = if r + 1 < 5 && c >= 2 {
                img[(r + 1) * 7 + c - 2]
            } else {
                0.0
            };
            assert!((moved[r * 7 + c] - want).abs() < 1e-6, "({r}, {c})");
        }
    }
    // A half-pixel shift averages neighbours (bilinear).
    let half = augment::shift_rotate(&img, 5, 7, 0.5, 0.0, 0.0);
    assert!((half[8] - 0.5 * (img[7] + img[8])).abs() < 1e-6);
}

#[test]
fn shift_rotate_turns_a_quarter_turn_clockwise_on_screen() {
    // 4x4 with one bright pixel at row 0, col 1; a quarter turn about the centre (2, 2) sends it
    // to row 1, col 3.
    let mut img = vec![0.0; 16];
    img[1] = 1.0;
    let out = augment::shift_rotate(&img, 4, 4, 0.0, 0.0, 90.0);
    assert!((out[4 + 3] - 1.0).abs() < 1e-5, "{out:?}");
    assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);
}

#[test]
fn random_shift_rotate_stays_within_its_bounds() {
    let ds = procedural_digits(20, 9);
    let mut rng = Rng::new(4);
    for i in 0..ds.n {
        let img = ds.image(i).unwrap();
        let out = augment::random_shift_rotate(img, 28, 28, 2.0, 12.0, &mut rng);
        assert!(out.iter().all(|v| (0.0..=1.0 + 1e-6).contains(v)));
        // Small motions keep most of the ink (bilinear blurs a little, borders may clip a bit).
        let (a, b) = (img.iter().sum::<f32>(), out.iter().sum::<f32>());
        assert!((b / a - 1.0).abs() < 0.2, "ink {a} -> {b}");
    }
    // Zero ranges change nothing.
    let img = ds.image(0).unwrap();
    assert_eq!(
        augment::random_shift_rotate(img, 28, 28, 0.0, 0.0, &mut rng),
        img
    );
}

// ---------------------------------------------------------------- subsets and folds

#[test]
fn split_cuts_contiguous_folds_that_reassemble_the_data() {
    let ds = procedural_digits(23, 10);
    let folds = ds.split(5).unwrap();
    assert_eq!(
        folds.iter().map(|f| f.n).collect::<Vec<_>>(),
        vec![4, 5, 4, 5, 5]
    );
    let labels: Vec<u8> = folds.iter().flat_map(|f| f.labels.clone()).collect();
    let images: Vec<f32> = folds.iter().flat_map(|f| f.images.clone()).collect();
    assert_eq!((labels, images), (ds.labels.clone(), ds.images.clone()));
    assert!(ds.split(0).is_err());
    assert!(ds.split(24).is_err());
    assert_eq!(ds.split(1).unwrap(), vec![ds.clone()]);
}

#[test]
fn fold_holds_out_one_fold_and_trains_on_the_rest() {
    let ds = procedural_digits(30, 11);
    let folds = ds.split(3).unwrap();
    for (i, fold) in folds.iter().enumerate() {
        let (train, val) = ds.fold(3, i).unwrap();
        assert_eq!(&val, fold);
        assert_eq!(train.n + val.n, ds.n);
        let rest: Vec<u8> = folds
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .flat_map(|(_, f)| f.labels.clone())
            .collect();
        assert_eq!(train.labels, rest);
    }
    assert!(ds.fold(3, 3).is_err());
}

#[test]
fn subset_picks_images_by_index_and_rejects_bad_indices() {
    let ds = procedural_digits(10, 12);
    let sub = ds.subset(&[7, 2, 7]).unwrap();
    assert_eq!(sub.n, 3);
    assert_eq!(sub.labels, vec![ds.labels[7], ds.labels[2], ds.labels[7]]);
    assert_eq!(sub.image(1).unwrap(), ds.image(2).unwrap());
    let err = ds.subset(&[1, 10]).unwrap_err().to_string();
    assert_mentions(&err, &["index 10", "10 images"]);
    let shuffled = ds.shuffled(5).unwrap();
    let mut a = shuffled.labels.clone();
    let mut b = ds.labels.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(Dataset::new(vec![0.0; 5], vec![1], 2, 2, 10).is_err());
    assert!(Dataset::new(vec![0.0; 4], vec![10], 2, 2, 10).is_err());
    assert!(Dataset::new(vec![0.0; 4], vec![9], 2, 2, 10).is_ok());
}

// ---------------------------------------------------------------- rng

#[test]
fn rng_below_is_roughly_uniform_and_shuffle_is_a_permutation() {
    let mut rng = Rng::new(99);
    let mut counts = [0usize; 7];
    for _ in 0..70_000 {
        counts[rng.below(7)] += 1;
    }
    assert!(
        counts.iter().all(|&c| (9_400..10_600).contains(&c)),
        "{counts:?}"
    );
    let p = rng.permutation(100);
    let mut s = p.clone();
    s.sort();
    assert_eq!(s, (0..100).collect::<Vec<_>>());
    let mean = (0..10_000).map(|_| rng.normal()).sum::<f32>() / 10_000.0;
    assert!(mean.abs() < 0.05, "normal mean {mean}");
    assert_ne!(
        Rng::with_stream(1, 0).next_u64(),
        Rng::with_stream(1, 1).next_u64()
    );
}
