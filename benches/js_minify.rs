//! JS stage: minify three.js's `build/three.module.js` (660 KB ES module) with kiln's JS
//! transformer, exactly as a build runs it (parse, reference analysis, swc compress + mangle,
//! print with source map).

use kiln::kiln_core::{Asset, Config, TransformInput, Transformer};

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 5)]
fn three_module_js(bencher: divan::Bencher) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/js-site/src/vendor/three/build/three.module.js"
    );
    let asset = Asset::from_bytes(
        "vendor/three/build/three.module.js",
        std::fs::read(path).expect("fixture"),
    );
    let config = Config::default();
    let t = kiln_js::JsTransformer::new(&config).unwrap();
    let all = [asset];
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
