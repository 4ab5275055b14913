//! Stage 2, transform: run each asset through the [`Transformer`] for its kind, in parallel.
//!
//! A transformer is pure: bytes in, bytes out, no file I/O. Where its output refers to another
//! asset it writes a placeholder and returns a [`Reference`](crate::model::Reference); the link stage resolves, hashes and
//! substitutes. Assets no transformer accepts pass through unchanged. A failed asset (an error
//! diagnostic) does not stop the others, so the user sees every error of a build at once.

use crate::cache::Cache;
use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::model::{
    Asset, AssetId, AssetKind, Discovered, ImageInfo, TransformOutput, Transformed,
};

/// What a transformer is given.
#[derive(Debug)]
pub struct TransformInput<'a> {
    /// The asset.
    pub asset: &'a Asset,
    /// Every asset of the build, by id, for transformers that inline others (CSS bundling).
    pub all: &'a [Asset],
    /// The build configuration.
    pub config: &'a Config,
}

impl TransformInput<'_> {
    /// The asset with logical path `logical`, if it is part of the build.
    pub fn lookup(&self, logical: &str) -> Option<&Asset> {
        self.all
            .binary_search_by(|a| a.logical.as_str().cmp(logical))
            .ok()
            .map(|i| &self.all[i])
    }
}

/// A transformer for some kinds of asset. Implementations live in their own crates.
pub trait Transformer: Send + Sync {
    /// A short name for progress and timing output (`css`).
    fn name(&self) -> &'static str;
    /// Whether this transformer handles assets of `kind`.
    fn accepts(&self, kind: AssetKind) -> bool;
    /// Transforms one asset. Must not panic on bad input: report a diagnostic instead.
    fn transform(&self, input: &TransformInput<'_>) -> TransformOutput;
    /// Roughly how many bytes of memory transforming `asset` takes at its peak, when that is far
    /// more than its size (a decoded image and its encoders). The transform stage runs such
    /// assets side by side only while their estimates fit in a budget. Default: 0 (not counted).
    fn memory_estimate(&self, _asset: &Asset, _config: &Config) -> u64 {
        0
    }
}

/// Runs every asset through the first transformer that accepts its kind, in parallel on the
/// current rayon pool. `on_done` is called once per finished asset (for progress bars).
pub fn transform(
    discovered: Discovered,
    config: &Config,
    transformers: &[&dyn Transformer],
    cache: Option<&Cache>,
    on_done: &(dyn Fn() + Sync),
) -> Transformed {
    let assets = discovered.assets;
    // Content hashes, for cache keys and for checking cached outputs' dependencies.
    let content_of = |logical: &str| -> Option<blake3::Hash> {
        let i = assets
            .binary_search_by(|a| a.logical.as_str().cmp(logical))
            .ok()?;
        Some(assets[i].hash)
    };
    let fingerprint = config.transform_fingerprint();
    // Largest first, one task per asset: a big file started last would leave the other cores
    // idle at the end of the stage. Results are put back in asset order.
    let mut order: Vec<usize> = (0..assets.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(assets[i].bytes.len()));
    let work = |i: usize| -> TransformOutput {
        let asset = &assets[i];
        let input = TransformInput {
            asset,
            all: &assets,
            config,
        };
        let out = match (transformers.iter().find(|t| t.accepts(asset.kind)), cache) {
            (Some(t), Some(cache)) => {
                let mut key = blake3::Hasher::new();
                key.update(b"kiln transform\0");
                key.update(crate::model::VERSION.as_bytes());
                key.update(t.name().as_bytes());
                key.update(fingerprint.as_bytes());
                key.update(asset.logical.as_bytes());
                key.update(b"\0");
                key.update(asset.hash.as_bytes());
                let key = key.finalize();
                let cached = cache.get("transform", &key).and_then(|payload| {
                    crate::cache::decode_transform(payload, &asset.display_path(), content_of)
                });
                cached.unwrap_or_else(|| {
                    let mut out = run_guarded(*t, &input);
                    if !out.failed() {
                        // Bytes that link will not change: hash them for SRI once, here.
                        if out.references.is_empty() && out.map_comment.is_none() {
                            out.integrity = Some(crate::integrity::sri(&out.bytes));
                        }
                        for v in &mut out.variants {
                            v.integrity = Some(crate::integrity::sri(&v.bytes));
                        }
                        if let Some(payload) =
                            crate::cache::encode_transform(&out, &asset.display_path(), content_of)
                        {
                            cache.put("transform", &key, &payload);
                        }
                    }
                    out
                })
            }
            (Some(t), None) => run_guarded(*t, &input),
            (None, _) => TransformOutput::passthrough(asset),
        };
        on_done();
        out
    };
    let estimates: Vec<u64> = assets
        .iter()
        .map(|a| match transformers.iter().find(|t| t.accepts(a.kind)) {
            Some(t) if a.known.is_none() => t.memory_estimate(a, config),
            _ => 0,
        })
        .collect();
    let mut done = run_bounded(&order, &estimates, config.memory_budget(), &work);
    done.sort_unstable_by_key(|(i, _)| *i);
    let outputs = done.into_iter().map(|(_, out)| out).collect();
    expand_variants(assets, outputs)
}

/// Turns every output's [`Variant`]s into assets of their own (passing through), keeping the
/// asset list in logical-path order with dense ids. A variant whose name a source file or an
/// earlier variant already has is left out, with a warning on the image it came from.
fn expand_variants(assets: Vec<Asset>, mut outputs: Vec<TransformOutput>) -> Transformed {
    if outputs.iter().all(|o| o.variants.is_empty()) {
        return Transformed { assets, outputs };
    }
    let mut taken: std::collections::HashMap<String, usize> = assets
        .iter()
        .enumerate()
        .map(|(i, a)| (a.logical.clone(), i))
        .collect();
    let mut extra: Vec<(Asset, TransformOutput)> = Vec::new();
    for (i, output) in outputs.iter_mut().enumerate() {
        let parent = &assets[i];
        for variant in std::mem::take(&mut output.variants) {
            if let Some(&j) = taken.get(&variant.logical) {
                let other = match assets.get(j) {
                    Some(a) if j != i => format!("the source file `{}`", a.logical),
                    _ => "another image's variant".to_owned(),
                };
                output.diagnostics.push(
                    Diagnostic::warning(
                        "variant-name-taken",
                        parent.display_path(),
                        format!(
                            "its variant `{}` is not written: {other} has that name",
                            variant.logical
                        ),
                    )
                    .with_help("rename one of the files, or turn variants off for it with `[[images.overrides]]`"),
                );
                continue;
            }
            taken.insert(variant.logical.clone(), usize::MAX);
            let mut asset = Asset::from_bytes(&variant.logical, variant.bytes);
            asset.path = parent.path.clone();
            let out = TransformOutput {
                bytes: asset.bytes.clone(),
                integrity: variant.integrity,
                image: Some(ImageInfo {
                    width: variant.width,
                    height: variant.height,
                    variant_of: Some(parent.logical.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            if let Some(image) = output.image.as_mut() {
                image.variants.push(variant.logical.clone());
            }
            extra.push((asset, out));
        }
    }
    let mut all: Vec<(Asset, TransformOutput)> =
        assets.into_iter().zip(outputs).chain(extra).collect();
    all.sort_by(|a, b| a.0.logical.cmp(&b.0.logical));
    let (mut assets, outputs): (Vec<Asset>, Vec<TransformOutput>) = all.into_iter().unzip();
    for (i, a) in assets.iter_mut().enumerate() {
        a.id = AssetId(i as u32);
    }
    Transformed { assets, outputs }
}

/// Runs `work` on every index of `order`, in that order of preference, on every thread of the
/// current rayon pool, keeping the sum of the `estimates` of the items in flight within `budget`
/// (items that do not fit are passed over for smaller ones, so a core never idles while work that
/// fits remains). An item estimated at more than half the budget runs alone: it starts when
/// nothing at all is in flight, and nothing starts beside it, not even items estimated at zero
/// (CSS and JS take memory too), so the process peaks at that one item plus a fixed base.
///
/// One loop per thread, started with `rayon::broadcast`, claims items. Unlike a parallel
/// iterator, this bounds the items in flight to the thread count even when a codec's own rayon
/// jobs (oxipng's trials) make a waiting thread steal work: a broadcast loop cannot be
/// stolen, so items are only ever claimed at the top of a thread's stack. That is also what makes
/// waiting for the budget safe: a waiting thread holds no item and no stolen job.
fn run_bounded<T: Send>(
    order: &[usize],
    estimates: &[u64],
    budget: u64,
    work: &(dyn Fn(usize) -> T + Sync),
) -> Vec<(usize, T)> {
    /// The items not claimed yet, in order of preference, and the estimates of those in flight.
    struct State {
        remaining: Vec<usize>,
        in_flight: u64,
        /// Items in flight, whatever their estimate.
        running: usize,
        /// An item running alone is in flight.
        alone: bool,
    }
    let alone = |cost: u64| cost.saturating_mul(2) > budget;
    /// Gives an item's budget back when dropped, even if `work` panics, so no thread waits forever.
    struct Release<'a> {
        cost: u64,
        state: &'a std::sync::Mutex<State>,
        freed: &'a std::sync::Condvar,
    }
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.in_flight = s.in_flight.saturating_sub(self.cost);
            s.running = s.running.saturating_sub(1);
            s.alone = false;
            self.freed.notify_all();
        }
    }
    let state = std::sync::Mutex::new(State {
        remaining: order.to_vec(),
        in_flight: 0,
        running: 0,
        alone: false,
    });
    let freed = std::sync::Condvar::new();
    let results = std::sync::Mutex::new(Vec::with_capacity(order.len()));
    rayon::broadcast(|_| {
        loop {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            let claim = loop {
                if s.remaining.is_empty() {
                    break None;
                }
                let (in_flight, running) = (s.in_flight, s.running);
                let fits = s.remaining.iter().position(|&i| {
                    let cost = estimates[i];
                    if alone(cost) {
                        running == 0
                    } else {
                        cost == 0 || in_flight == 0 || in_flight.saturating_add(cost) <= budget
                    }
                });
                match fits.filter(|_| !s.alone) {
                    Some(k) => {
                        let i = s.remaining.remove(k);
                        s.in_flight = s.in_flight.saturating_add(estimates[i]);
                        s.running += 1;
                        s.alone = alone(estimates[i]);
                        break Some(i);
                    }
                    None => s = freed.wait(s).unwrap_or_else(|e| e.into_inner()),
                }
            };
            drop(s);
            let Some(i) = claim else { break };
            let _release = Release {
                cost: estimates[i],
                state: &state,
                freed: &freed,
            };
            let out = work(i);
            results
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((i, out));
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Runs a transformer, turning a panic inside a codec into an error diagnostic on that file, so
/// one bad file cannot take the whole build (and the other files' errors) down with it.
fn run_guarded(t: &dyn Transformer, input: &TransformInput<'_>) -> TransformOutput {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.transform(input))) {
        Ok(out) => out,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            TransformOutput {
                diagnostics: vec![
                    Diagnostic::error(
                        "internal",
                        input.asset.display_path(),
                        format!("the {} transformer crashed on this file: {what}", t.name()),
                    )
                    .with_help("this is a bug in kiln; please report it with the file attached"),
                ],
                ..Default::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn items_over_the_memory_budget_never_overlap_and_all_run() {
        // (estimate) of each item, each under half the budget of 768; any three of the first
        // ones side by side would exceed it.
        let estimates = [350u64, 300, 0, 0, 100, 380, 0, 360];
        let order: Vec<usize> = (0..estimates.len()).collect();
        let (in_flight, peak, overlap) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let done = pool.install(|| {
            run_bounded(&order, &estimates, 768, &|i| {
                let now = in_flight.fetch_add(estimates[i], Ordering::SeqCst) + estimates[i];
                peak.fetch_max(now, Ordering::SeqCst);
                if now > estimates[i] {
                    overlap.fetch_add(1, Ordering::SeqCst);
                }
                // Long enough for the other threads to claim what they may meanwhile.
                std::thread::sleep(std::time::Duration::from_millis(30));
                in_flight.fetch_sub(estimates[i], Ordering::SeqCst);
                i
            })
        });
        let mut ran: Vec<usize> = done.iter().map(|(i, _)| *i).collect();
        ran.sort_unstable();
        assert_eq!(ran, order, "every item runs once");
        assert!(peak.into_inner() <= 768, "the budget was exceeded");
        assert!(
            overlap.into_inner() > 0,
            "nothing ran side by side: the test shows nothing"
        );
    }

    #[test]
    fn an_item_over_half_the_budget_runs_with_nothing_beside_it() {
        // 500 of 768: alone, while the zero-estimate items (CSS, JS) wait.
        let estimates = [0u64, 0, 500, 0, 0, 0, 100, 0];
        let order: Vec<usize> = (0..estimates.len()).collect();
        let running = AtomicU64::new(0);
        let (beside_big, side_by_side) = (AtomicU64::new(0), AtomicU64::new(0));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            run_bounded(&order, &estimates, 768, &|i| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                if now > 1 {
                    side_by_side.fetch_add(1, Ordering::SeqCst);
                }
                for _ in 0..6 {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    if i == 2 && running.load(Ordering::SeqCst) > 1 {
                        beside_big.fetch_add(1, Ordering::SeqCst);
                    }
                }
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        assert_eq!(
            beside_big.into_inner(),
            0,
            "something ran beside the big item"
        );
        assert!(
            side_by_side.into_inner() > 0,
            "the small items never ran in parallel"
        );
    }
}
