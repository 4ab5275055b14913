//! Precompression: Brotli and gzip (libdeflate) at several levels on one large minified JS file
//! (three.js's `three.core.js` minified by kiln, ~390 KB), to choose the defaults. Prints each
//! level's output size once, then divan times it.

use kiln::kiln_core::compress::encode;
use kiln::kiln_core::config::CompressConfig;
use kiln::kiln_core::model::Encoding;
use kiln::kiln_core::{Asset, Config, TransformInput, Transformer};

fn main() {
    let input = minified();
    eprintln!("input: {} bytes", input.len());
    for (encoding, level) in LEVELS {
        let out = encode(encoding, &input, &config(encoding, level)).unwrap();
        eprintln!(
            "{} level {level}: {} bytes ({:.2}%)",
            encoding.name(),
            out.len(),
            out.len() as f64 * 100.0 / input.len() as f64
        );
    }
    divan::main();
}

const LEVELS: [(Encoding, u32); 7] = [
    (Encoding::Brotli, 5),
    (Encoding::Brotli, 9),
    (Encoding::Brotli, 10),
    (Encoding::Brotli, 11),
    (Encoding::Gzip, 6),
    (Encoding::Gzip, 9),
    (Encoding::Gzip, 12),
];

fn config(encoding: Encoding, level: u32) -> CompressConfig {
    let mut c = CompressConfig::default();
    match encoding {
        Encoding::Brotli => c.brotli_quality = level,
        _ => c.gzip_level = level as i32,
    }
    c
}

fn minified() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/js-site/src/vendor/three/build/three.core.js"
    );
    let asset = Asset::from_bytes("three.core.js", std::fs::read(path).expect("fixture"));
    let config = Config::default();
    let all = [asset];
    let t = kiln_js::JsTransformer::new(&config).unwrap();
    t.transform(&TransformInput {
        asset: &all[0],
        all: &all,
        config: &config,
    })
    .bytes
    .to_vec()
}

#[divan::bench(args = LEVELS, sample_count = 3)]
fn three_core_min_js(bencher: divan::Bencher, (encoding, level): (Encoding, u32)) {
    let input = minified();
    let c = config(encoding, level);
    bencher
        .counter(divan::counter::BytesCount::new(input.len()))
        .bench(|| encode(encoding, &input, &c));
}
