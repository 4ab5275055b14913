//! Image stage: lossless optimisation of one sprite (jQuery UI's 256x240 icon sheet) with kiln's
//! PNG transformer at the default preset, inside a rayon pool as a build runs it.

use kiln::kiln_core::{Asset, Config, TransformInput, Transformer};

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 10)]
fn jquery_ui_sprite(bencher: divan::Bencher) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/real-world/vendor/jquery-ui/themes/base/images/ui-icons_444444_256x240.png"
    );
    let mut config = Config::default();
    // Only the lossless optimisation: no AVIF/WebP variants, no placeholder.
    config.images.formats.clear();
    config.images.placeholder = false;
    let t = kiln_image::ImageTransformer::new(&config);
    let all = [Asset::from_bytes(
        "ui-icons.png",
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
