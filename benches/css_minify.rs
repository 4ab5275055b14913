//! CSS stage: minify bootstrap 5's unminified CSS (280 KB) with kiln's CSS transformer, exactly
//! as a build runs it (decode, parse, minify for `defaults`, print with source map, references).

use kiln::kiln_core::{Asset, Config, TransformInput, Transformer};

fn main() {
    divan::main();
}

fn bootstrap() -> Asset {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/real-world/vendor/bootstrap/css/bootstrap.css"
    );
    Asset::from_bytes("css/bootstrap.css", std::fs::read(path).expect("fixture"))
}

#[divan::bench(sample_count = 20)]
fn bootstrap_css(bencher: divan::Bencher) {
    let config = Config::default();
    let t = kiln_css::CssTransformer::new(&config).unwrap();
    let all = [bootstrap()];
    bencher
        .counter(divan::counter::BytesCount::new(all[0].bytes.len()))
        .bench(|| {
            t.transform(&TransformInput {
                asset: &all[0],
                all: &all,
                config: &config,
            })
        });
}
