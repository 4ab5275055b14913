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

#[test]
fn text_metadata_is_stripped_and_colour_information_kept() {
    let img =
        image::ImageBuffer::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 90]));
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let png = with_chunk(
        &png.into_inner(),
        b"tEXt",
        b"Comment\0made with a camera, 2019, GPS 51.5N 0.1W",
    );
    let png = with_chunk(&png, b"sRGB", &[0]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/a.png"), &png).unwrap();
    let out = dir.path().join("out");
    common::builder(&dir.path().join("src"), &out)
        .build()
        .unwrap();
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
