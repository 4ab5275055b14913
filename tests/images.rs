//! Images on real files: the PNGs of leaflet and jQuery UI (icons and sprites) come out smaller or
//! equal, with bit-exact pixels, and metadata that does not affect colour is stripped.

mod common;

use common::{fixture, names};

fn pixels(png: &[u8]) -> (u32, u32, Vec<u16>) {
    let img = image::load_from_memory(png).unwrap();
    (img.width(), img.height(), img.to_rgba16().into_raw())
}

#[test]
fn real_pngs_shrink_losslessly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let report = common::builder(&fixture("real-world"), &out)
        .build()
        .unwrap();
    let mut pngs = 0;
    let (mut before, mut after) = (0, 0);
    for (logical, file) in names(&out) {
        if !logical.ends_with(".png") {
            continue;
        }
        let source = std::fs::read(fixture("real-world").join(&logical)).unwrap();
        let built = std::fs::read(out.join(&file)).unwrap();
        assert!(built.len() <= source.len(), "{logical} grew");
        assert!(
            pixels(&source) == pixels(&built),
            "{logical}: pixels changed"
        );
        (before, after, pngs) = (before + source.len(), after + built.len(), pngs + 1);
    }
    assert!(pngs >= 11, "only {pngs} PNGs");
    assert!(
        after * 100 < before * 95,
        "the PNGs only went from {before} to {after} bytes"
    );
    assert_eq!(report.image_bytes, (before as u64, after as u64));
}

/// Inserts a chunk before IEND.
fn with_chunk(png: &[u8], kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let iend = png.len() - 12;
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    chunk.extend_from_slice(&crc.finalize().to_be_bytes());
    [&png[..iend], &chunk[..], &png[iend..]].concat()
}

/// Builds a source folder of `(logical path, bytes)` with the default settings; returns the temp
/// dir (keep it alive) and the output folder.
fn build_files(files: &[(&str, Vec<u8>)]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for (logical, bytes) in files {
        std::fs::create_dir_all(src.join(logical).parent().unwrap()).unwrap();
        std::fs::write(src.join(logical), bytes).unwrap();
    }
    let out = dir.path().join("out");
    common::builder(&src, &out).build().unwrap();
    (dir, out)
}

/// A 40x30 RGB gradient as a PNG.
fn gradient_png() -> Vec<u8> {
    let img =
        image::ImageBuffer::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 90]));
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    png.into_inner()
}

#[test]
fn text_metadata_is_stripped_and_colour_information_kept() {
    let png = with_chunk(
        &gradient_png(),
        b"tEXt",
        b"Comment\0made with a camera, 2019, GPS 51.5N 0.1W",
    );
    let png = with_chunk(&png, b"sRGB", &[0]);
    let (_dir, out) = build_files(&[("a.png", png.clone())]);
    let built = std::fs::read(out.join(&names(&out)["a.png"])).unwrap();
    let has = |b: &[u8], kind: &[u8]| b.windows(4).any(|w| w == kind);
    assert!(
        has(&png, b"tEXt") && !has(&built, b"tEXt"),
        "tEXt is stripped"
    );
    assert!(has(&built, b"sRGB"), "sRGB affects colour and is kept");
    assert!(pixels(&png) == pixels(&built));
}

#[test]
fn images_pass_through_untouched_when_optimisation_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut b = common::builder(&fixture("real-world"), &out);
    b.config_mut().images.optimize = false;
    b.build().unwrap();
    let logical = "vendor/jquery-ui/themes/base/images/ui-icons_444444_256x240.png";
    let built = std::fs::read(out.join(&names(&out)[logical])).unwrap();
    assert!(built == std::fs::read(fixture("real-world").join(logical)).unwrap());
}

/// Builds the named files of `fixtures/images` (and any `extra` (logical, fixture path)) with
/// `configure` applied; returns the temp dir, the output folder and the build's result.
fn build_images(
    files: &[&str],
    extra: &[(&str, &str)],
    configure: impl FnOnce(&mut kiln::Config),
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Result<kiln::BuildReport, kiln::BuildError>,
) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for f in files {
        let to = src.join("img").join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixture("images").join(f), to).unwrap();
    }
    for (logical, from) in extra {
        let to = src.join(logical);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixture(from), to).unwrap();
    }
    let out = dir.path().join("out");
    let mut b = common::builder(&src, &out);
    configure(b.config_mut());
    let result = b.build();
    (dir, out, result)
}

/// Width and height from an AVIF's `ispe` (image spatial extents) property.
fn avif_dimensions(avif: &[u8]) -> (u32, u32) {
    assert_eq!(&avif[4..12], b"ftypavif", "not an AVIF file");
    let at = avif
        .windows(4)
        .position(|w| w == b"ispe")
        .expect("ispe box")
        + 8;
    let be = |i: usize| u32::from_be_bytes(avif[i..i + 4].try_into().unwrap());
    (be(at), be(at + 4))
}

/// Dimensions of any image kiln writes; decodes everything but AVIF (checked by its header here,
/// and decoded by Chromium in tests/serving.rs).
fn dimensions(bytes: &[u8], logical: &str) -> (u32, u32) {
    if logical.ends_with(".avif") {
        return avif_dimensions(bytes);
    }
    let img = image::load_from_memory(bytes).unwrap_or_else(|e| panic!("{logical}: {e}"));
    (img.width(), img.height())
}

#[test]
fn photos_get_responsive_widths_and_smaller_avif_and_webp_variants() {
    let (_dir, out, result) = build_images(
        &[
            "photo-rocket.jpg",
            "photo-chelsea.png",
            "rotated-exif-6.jpg",
            "sixteen-bit.png",
        ],
        &[
            (
                "icons/marker.png",
                "real-world/vendor/leaflet/images/marker-icon-2x.png",
            ),
            (
                "icons/sprite.png",
                "real-world/vendor/jquery-ui/themes/base/images/ui-icons_444444_256x240.png",
            ),
        ],
        |c| c.images.widths = vec![200, 320, 5000],
    );
    result.unwrap();
    let manifest = common::json(&out.join("manifest.json"));
    let assets = manifest["assets"].as_object().unwrap();
    let expect: [(&str, (u32, u32)); 6] = [
        ("img/photo-rocket.jpg", (640, 427)),
        ("img/photo-chelsea.png", (451, 300)),
        // Stored 512x600 with EXIF orientation 6: displayed (and resized) 600x512.
        ("img/rotated-exif-6.jpg", (600, 512)),
        ("img/sixteen-bit.png", (451, 300)),
        ("icons/marker.png", (50, 82)),
        ("icons/sprite.png", (256, 240)),
    ];
    let mut modern = 0;
    for (logical, (w, h)) in expect {
        let entry = &assets[logical];
        assert_eq!(
            (entry["width"].as_u64(), entry["height"].as_u64()),
            (Some(w.into()), Some(h.into())),
            "{logical}"
        );
        assert!(
            entry["placeholder"].as_str().is_some_and(|p| p.len() > 10),
            "{logical} has a placeholder"
        );
        let variants = entry["variants"].as_array().unwrap();
        let ext = logical.rsplit_once('.').unwrap().1;
        // The image's own format at each width below its own (never upscaled).
        let own_widths: Vec<u64> = variants
            .iter()
            .filter(|v| v["logical"].as_str().unwrap().ends_with(&format!(".{ext}")))
            .map(|v| v["width"].as_u64().unwrap())
            .collect();
        let wanted: Vec<u64> = [200, 320].into_iter().filter(|&x| x < w as u64).collect();
        assert_eq!(own_widths, wanted, "{logical}");
        for v in variants {
            let vlogical = v["logical"].as_str().unwrap();
            let file = v["file"].as_str().unwrap();
            let bytes = std::fs::read(out.join(file)).unwrap();
            assert_eq!(
                bytes.len() as u64,
                v["size"].as_u64().unwrap(),
                "{vlogical}"
            );
            let (vw, vh) = (
                v["width"].as_u64().unwrap() as u32,
                v["height"].as_u64().unwrap() as u32,
            );
            assert_eq!(dimensions(&bytes, vlogical), (vw, vh), "{vlogical}");
            assert_eq!(
                vh,
                ((h as f64) * (vw as f64) / (w as f64)).round() as u32,
                "{vlogical} keeps the aspect ratio"
            );
            let vext = vlogical.rsplit_once('.').unwrap().1;
            if vext != ext {
                modern += 1;
                let type_ = v["content_type"].as_str().unwrap();
                assert_eq!(type_, format!("image/{vext}"));
            }
            // Variants are assets of their own: fingerprinted and in every manifest.
            assert_eq!(assets[vlogical]["variant_of"], logical);
            assert_eq!(
                common::json(&out.join("staticfiles.json"))["paths"][vlogical],
                file
            );
        }
    }
    // Each modern format is offered at every width or not at all (a <picture>'s sources list the
    // same widths), and only when it is smaller in total than the image's own format.
    for (logical, (w, _)) in expect {
        let entry = &assets[logical];
        let variants = entry["variants"].as_array().unwrap();
        let ext = logical.rsplit_once('.').unwrap().1;
        let by_ext = |e: &str| -> (Vec<u64>, u64) {
            let of: Vec<&serde_json::Value> = variants
                .iter()
                .filter(|v| v["logical"].as_str().unwrap().ends_with(&format!(".{e}")))
                .collect();
            (
                of.iter().map(|v| v["width"].as_u64().unwrap()).collect(),
                of.iter().map(|v| v["size"].as_u64().unwrap()).sum(),
            )
        };
        let (mut own_widths, own_total) = by_ext(ext);
        own_widths.push(w.into());
        let own_total = own_total + entry["size"].as_u64().unwrap();
        for modern_ext in ["avif", "webp"] {
            let (widths, total) = by_ext(modern_ext);
            if !widths.is_empty() {
                assert_eq!(widths, own_widths, "{logical}: {modern_ext} at every width");
                assert!(
                    total < own_total,
                    "{logical}: {modern_ext} {total} >= {own_total}"
                );
            }
        }
    }
    let photo = assets["img/photo-rocket.jpg"]["variants"]
        .as_array()
        .unwrap();
    let photo: Vec<&str> = photo
        .iter()
        .map(|v| v["logical"].as_str().unwrap())
        .collect();
    assert_eq!(
        photo,
        [
            "img/photo-rocket-200w.jpg",
            "img/photo-rocket-200w.avif",
            "img/photo-rocket-200w.webp",
            "img/photo-rocket-320w.jpg",
            "img/photo-rocket-320w.avif",
            "img/photo-rocket-320w.webp",
            "img/photo-rocket.avif",
            "img/photo-rocket.webp"
        ],
        "photos get every width in every format"
    );
    assert!(modern >= 12, "only {modern} modern variants");
}

/// Mean absolute difference per channel between two same-sized RGB images.
fn difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

#[test]
fn exif_orientation_is_applied_before_resizing() {
    let (_dir, out, result) = build_images(&["rotated-exif-6.jpg"], &[], |c| {
        c.images.widths = vec![300];
        c.images.formats.clear();
    });
    result.unwrap();
    let names = names(&out);
    let variant = image::load_from_memory(
        &std::fs::read(out.join(&names["img/rotated-exif-6-300w.jpg"])).unwrap(),
    )
    .unwrap()
    .to_rgb8();
    assert_eq!(variant.dimensions(), (300, 256));
    let stored =
        image::load_from_memory(&std::fs::read(fixture("images/rotated-exif-6.jpg")).unwrap())
            .unwrap();
    let upright = stored
        .rotate90()
        .resize_exact(300, 256, image::imageops::FilterType::Lanczos3)
        .to_rgb8();
    let wrong = stored
        .rotate270()
        .resize_exact(300, 256, image::imageops::FilterType::Lanczos3)
        .to_rgb8();
    let (right, wrong) = (difference(&variant, &upright), difference(&variant, &wrong));
    assert!(
        right < 6.0 && right * 3.0 < wrong,
        "upright {right}, the other way {wrong}"
    );
    // The optimised original keeps its orientation (browsers rotate it), and nothing else of its EXIF.
    let built = std::fs::read(out.join(&names["img/rotated-exif-6.jpg"])).unwrap();
    let mut decoder = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(&built)).unwrap();
    use image::ImageDecoder as _;
    assert_eq!(
        decoder.orientation().unwrap(),
        image::metadata::Orientation::Rotate90
    );
}

#[test]
fn jpegs_are_optimised_losslessly_and_re_encoded_only_when_asked() {
    let (_dir, out, result) =
        build_images(&["photo-rocket.jpg"], &[], |c| c.images.formats.clear());
    result.unwrap();
    let source = std::fs::read(fixture("images/photo-rocket.jpg")).unwrap();
    let lossless = std::fs::read(out.join(&names(&out)["img/photo-rocket.jpg"])).unwrap();
    assert!(
        lossless.len() < source.len(),
        "{} -> {}",
        source.len(),
        lossless.len()
    );
    let rgb = |b: &[u8]| image::load_from_memory(b).unwrap().to_rgb8();
    assert!(
        rgb(&lossless) == rgb(&source),
        "lossless optimisation changed pixels"
    );
    assert!(
        !lossless.windows(4).any(|w| w == b"cmp3"),
        "the JPEG comment is stripped"
    );

    let (_dir, out, result) = build_images(&["photo-rocket.jpg"], &[], |c| {
        c.images.formats.clear();
        c.images.jpeg_quality = Some(60);
    });
    result.unwrap();
    let lossy = std::fs::read(out.join(&names(&out)["img/photo-rocket.jpg"])).unwrap();
    assert!(
        lossy.len() < lossless.len(),
        "quality 60: {} bytes",
        lossy.len()
    );
    let diff = difference(&rgb(&lossy), &rgb(&source));
    assert!(diff > 0.0 && diff < 8.0, "quality 60 differs by {diff}");
}

#[test]
fn overrides_turn_variants_off_for_icons() {
    let (_dir, out, result) = build_images(
        &["photo-chelsea.png"],
        &[(
            "icons/marker.png",
            "real-world/vendor/leaflet/images/marker-icon-2x.png",
        )],
        |c| {
            c.images.widths = vec![100];
            c.images.overrides = vec![
                serde_json::from_value(serde_json::json!({
                    "paths": ["icons/**"], "widths": [], "formats": [], "placeholder": false
                }))
                .unwrap(),
            ];
        },
    );
    result.unwrap();
    let m = common::json(&out.join("manifest.json"));
    assert!(m["assets"]["icons/marker.png"].get("variants").is_none());
    assert!(m["assets"]["icons/marker.png"].get("placeholder").is_none());
    assert_eq!(m["assets"]["icons/marker.png"]["width"], 50);
    assert!(
        m["assets"]["img/photo-chelsea.png"]["variants"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );
}

#[test]
fn sixteen_bit_palette_and_animated_pngs_keep_their_pixels() {
    let (_dir, out, result) = build_images(
        &["sixteen-bit.png", "animated.png"],
        &[(
            "icons/palette.png",
            "real-world/vendor/leaflet/images/marker-icon-2x.png",
        )],
        |_| {},
    );
    result.unwrap();
    let names = names(&out);
    for (logical, source) in [
        ("img/sixteen-bit.png", fixture("images/sixteen-bit.png")),
        ("img/animated.png", fixture("images/animated.png")),
        (
            "icons/palette.png",
            fixture("real-world/vendor/leaflet/images/marker-icon-2x.png"),
        ),
    ] {
        let source = std::fs::read(source).unwrap();
        let built = std::fs::read(out.join(&names[logical])).unwrap();
        assert!(built.len() <= source.len(), "{logical} grew");
        assert!(
            pixels(&source) == pixels(&built),
            "{logical}: pixels changed"
        );
    }
    let animated = std::fs::read(out.join(&names["img/animated.png"])).unwrap();
    assert!(animated.windows(4).any(|w| w == b"acTL"), "still animated");
    let m = common::json(&out.join("manifest.json"));
    assert!(
        m["assets"]["img/animated.png"].get("variants").is_none(),
        "one frame would be wrong"
    );
}

#[test]
fn bombs_and_truncated_images_fail_the_build_naming_each_file() {
    let (dir, out, result) = build_images(&["photo-chelsea.png"], &[], |_| {});
    result.unwrap();
    let before = common::tree(&out);
    for f in ["bomb-100000x100000.png", "truncated.jpg", "truncated.png"] {
        std::fs::copy(
            fixture("images").join(f),
            dir.path().join("src/img").join(f),
        )
        .unwrap();
    }
    let err = common::builder(&dir.path().join("src"), &out)
        .build()
        .unwrap_err();
    let kiln::BuildError::Diagnostics(diagnostics) = err else {
        panic!("{err}")
    };
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}: {}: {}", d.path, d.code, d.message))
        .collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].contains("bomb-100000x100000.png: image-too-large: 100000x100000"),
        "{errors:#?}"
    );
    assert!(
        errors[1].contains("truncated.jpg: bad-image"),
        "{errors:#?}"
    );
    assert!(
        errors[2].contains("truncated.png: bad-image"),
        "{errors:#?}"
    );
    assert!(
        common::tree(&out) == before,
        "a failed build leaves the previous output alone"
    );
}

#[test]
fn webp_gif_svg_and_ico_pass_through_fingerprinted() {
    let mut webp = std::io::Cursor::new(Vec::new());
    image::DynamicImage::new_rgb8(8, 8)
        .write_to(&mut webp, image::ImageFormat::WebP)
        .unwrap();
    let files: [(&str, Vec<u8>); 4] = [
        ("img/a.webp", webp.into_inner()),
        // A 1x1 GIF89a.
        ("img/b.gif", b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec()),
        ("img/c.svg", std::fs::read(fixture("real-world/img/pin.svg")).unwrap()),
        ("favicon.ico", b"\x00\x00\x01\x00\x01\x00\x01\x01\x00\x00\x01\x00\x20\x00not really an icon".to_vec()),
    ];
    let (_dir, out) = build_files(&files);
    let names = names(&out);
    assert_eq!(names.len(), files.len(), "no variants: {names:?}");
    for (logical, bytes) in &files {
        let file = &names[*logical];
        assert!(
            common::looks_hashed(file.rsplit('/').next().unwrap()),
            "{file}"
        );
        assert!(
            std::fs::read(out.join(file)).unwrap() == *bytes,
            "{logical} changed"
        );
    }
}

#[test]
fn variants_are_byte_identical_whatever_the_thread_count() {
    let run = |jobs: usize| {
        let (_dir, out, result) = build_images(&["photo-rocket.jpg"], &[], |c| {
            c.jobs = Some(jobs);
            c.images.widths = vec![320];
        });
        result.unwrap();
        common::tree(&out)
    };
    let (one, three) = (run(1), run(3));
    assert!(one.keys().any(|k| k.ends_with(".avif")));
    assert!(one == three, "AVIF/WebP bytes depend on the thread count");
}

#[test]
fn a_png_exif_orientation_is_not_applied_since_the_optimised_png_drops_it() {
    // eXIf with Orientation = 6 (rotate 90°), which image 0.25 reports for PNGs.
    let exif = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
    let png = with_chunk(&gradient_png(), b"eXIf", exif);
    let (_dir, out) = build_files(&[("a.png", png.clone())]);
    let m = common::json(&out.join("manifest.json"));
    let entry = &m["assets"]["a.png"];
    let built = std::fs::read(out.join(entry["file"].as_str().unwrap())).unwrap();
    assert!(!built.windows(4).any(|w| w == b"eXIf"), "oxipng drops eXIf");
    assert_eq!(
        (entry["width"].as_u64(), entry["height"].as_u64()),
        (Some(40), Some(30))
    );
    for v in entry["variants"].as_array().into_iter().flatten() {
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(40), Some(30)),
            "{v}"
        );
    }
}

#[test]
fn the_placeholder_decodes_to_the_photo_s_shape_and_colour() {
    use base64::Engine as _;
    let (_dir, out, result) =
        build_images(&["photo-chelsea.png", "rotated-exif-6.jpg"], &[], |c| {
            c.images.formats.clear();
        });
    result.unwrap();
    let m = common::json(&out.join("manifest.json"));
    for (logical, fixture_name) in [
        ("img/photo-chelsea.png", "photo-chelsea.png"),
        ("img/rotated-exif-6.jpg", "rotated-exif-6.jpg"),
    ] {
        let entry = &m["assets"][logical];
        let hash = base64::engine::general_purpose::STANDARD
            .decode(entry["placeholder"].as_str().unwrap())
            .unwrap();
        let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).unwrap();
        let displayed = entry["width"].as_f64().unwrap() / entry["height"].as_f64().unwrap();
        assert!(
            (ratio / displayed as f32 - 1.0).abs() < 0.15,
            "{logical}: {ratio} vs {displayed}"
        );
        let (r, g, b, _) = thumbhash::thumb_hash_to_average_rgba(&hash).unwrap();
        let source = image::open(fixture("images").join(fixture_name))
            .unwrap()
            .to_rgb8();
        let n = source.pixels().len() as f32;
        let mean = |c: usize| source.pixels().map(|p| f32::from(p[c])).sum::<f32>() / n / 255.0;
        for (got, want) in [(r, mean(0)), (g, mean(1)), (b, mean(2))] {
            assert!(
                (got - want).abs() < 0.08,
                "{logical}: average {got} vs {want}"
            );
        }
    }
}
