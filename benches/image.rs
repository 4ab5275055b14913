//! Image stage, inside a rayon pool as a build runs it: lossless optimisation of one sprite
//! (jQuery UI's 256x240 icon sheet) at the default oxipng preset, and the AVIF variant of one
//! photo (the 640x427 rocket of fixtures/images) at the default quality and speed.

use kiln::ImageFormat;
use kiln::kiln_core::{Asset, Config, TransformInput, Transformer};

fn main() {
    divan::main();
}

fn run(bencher: divan::Bencher, path: &str, logical: &str, config: Config) {
    let t = kiln_image::ImageTransformer::new(&config);
    let all = [Asset::from_bytes(
        logical,
        std::fs::read(path).expect("fixture"),
    )];
    let pool = rayon::ThreadPoolBuilder::new().build().unwrap();
    bencher
        .counter(divan::counter::BytesCount::new(all[0].bytes.len()))
        .bench(|| {
            pool.install(|| {
                t.transform(&TransformInput {
                    asset: &all[0],
                    all: &all,
                    config: &config,
                })
            })
        });
}

#[divan::bench(sample_count = 10)]
fn png_jquery_ui_sprite(bencher: divan::Bencher) {
    let mut config = Config::default();
    // Only the lossless optimisation: no AVIF/WebP variants, no placeholder.
    config.images.formats.clear();
    config.images.placeholder = false;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/real-world/vendor/jquery-ui/themes/base/images/ui-icons_444444_256x240.png"
    );
    run(bencher, path, "ui-icons.png", config);
}

#[divan::bench(sample_count = 10)]
fn avif_photo(bencher: divan::Bencher) {
    let mut config = Config::default();
    // The lossless JPEG pass and the AVIF encode (colour-converted to sRGB), nothing else.
    config.images.formats = vec![ImageFormat::Avif];
    config.images.placeholder = false;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/images/photo-rocket.jpg"
    );
    run(bencher, path, "rocket.jpg", config);
}
