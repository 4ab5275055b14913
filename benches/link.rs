//! Link stage: resolve, hash (components in dependency order) and substitute a synthetic graph of
//! 10,000 assets with 50,000 references, including import cycles, on one thread and on all.

use kiln::kiln_core::link::link;
use kiln::kiln_core::model::{RefKind, RefSyntax, Reference, TransformOutput, Transformed};
use kiln::kiln_core::{Asset, AssetId, Config};

fn main() {
    divan::main();
}

const ASSETS: usize = 10_000;
const REFS_PER_ASSET: usize = 5;

/// Asset i references five others: mostly "later" ones (a DAG), and every 100th asset points
/// back, making cycles. Each output is ~1 KB of CSS-like text around its placeholders.
fn graph() -> Transformed {
    let logical = |i: usize| format!("dir{}/asset{i}.css", i % 50);
    let mut assets = Vec::with_capacity(ASSETS);
    let mut outputs = Vec::with_capacity(ASSETS);
    for i in 0..ASSETS {
        let mut text = format!(".a{i}{{color:red}}").repeat(40);
        let mut references = Vec::new();
        for k in 1..=REFS_PER_ASSET {
            let target = if i % 100 == 0 && k == 1 {
                i.saturating_sub(50)
            } else {
                (i + k * 7) % ASSETS
            };
            let placeholder = format!("\"__ph_{i}_{k}__\"");
            text.push_str(&format!(".r{k}{{background:url({placeholder})}}"));
            references.push(Reference {
                placeholder,
                specifier: format!("/static/{}", logical(target)),
                syntax: RefSyntax::CssUrl,
                kind: RefKind::Url,
                target: None,
                from: None,
                optional: false,
                line: 1,
                column: 1,
            });
        }
        assets.push(Asset::from_bytes(&logical(i), text.clone().into_bytes()));
        outputs.push(TransformOutput {
            bytes: text.into_bytes().into(),
            references,
            ..Default::default()
        });
    }
    // The link stage expects assets sorted by logical path, ids in that order.
    let mut pairs: Vec<(Asset, TransformOutput)> = assets.into_iter().zip(outputs).collect();
    pairs.sort_by(|a, b| a.0.logical.cmp(&b.0.logical));
    let (mut assets, outputs): (Vec<Asset>, Vec<TransformOutput>) = pairs.into_iter().unzip();
    for (i, a) in assets.iter_mut().enumerate() {
        a.id = AssetId(i as u32);
    }
    Transformed { assets, outputs }
}

#[divan::bench(args = [1, 2], sample_count = 10)]
fn link_10k_assets_50k_refs(bencher: divan::Bencher, threads: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let config = Config::default();
    bencher.with_inputs(graph).bench_local_values(|t| {
        let linked = pool.install(|| link(t, &config));
        assert!(!linked.failed());
        linked
    });
}
