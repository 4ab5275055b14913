//! Stage 2, transform: run each asset through the [`Transformer`] for its kind, in parallel.
//!
//! A transformer is pure: bytes in, bytes out, no file I/O. Where its output refers to another
//! asset it writes a placeholder and returns a [`Reference`](crate::model::Reference); the link stage resolves, hashes and
//! substitutes. Assets no transformer accepts pass through unchanged. A failed asset (an error
//! diagnostic) does not stop the others, so the user sees every error of a build at once.

use std::collections::BTreeSet;

use crate::cache::{Cache, transform_key};
use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::model::{
    Asset, AssetId, AssetKind, Discovered, ImageInfo, Known, Recorded, Stamp, TransformOutput,
    Transformed, Variant, dependency_hash,
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
///
/// A file kiln did not read because the file index recorded its outputs gets an output without
/// bytes ([`TransformOutput::kept`]). A transformer that read such a file (a stylesheet inlined
/// by `@import`) saw no bytes: that file is read and the transform run again.
pub fn transform(
    discovered: Discovered,
    config: &Config,
    transformers: &[&dyn Transformer],
    cache: Option<&Cache>,
    on_done: &(dyn Fn() + Sync),
) -> Transformed {
    let mut assets = discovered.assets;
    let all: Vec<usize> = (0..assets.len()).collect();
    let mut outputs: Vec<TransformOutput> = Vec::with_capacity(assets.len());
    outputs.resize_with(assets.len(), TransformOutput::default);
    let mut ran = vec![false; assets.len()];
    let stage = Stage {
        config,
        transformers,
        cache,
    };
    stage.run(&assets, &all, on_done, &mut outputs, &mut ran, true);
    stage.settle(&mut assets, &mut outputs, &mut ran);
    expand_variants(assets, outputs)
}

/// Reads and transforms the files kiln had not loaded whose records no longer hold (see
/// [`crate::link::stale`]). Their transformers see the source files alone, as in any transform
/// stage: image variants only join the assets after it.
pub fn materialise(
    transformed: &mut Transformed,
    stale: &[usize],
    config: &Config,
    transformers: &[&dyn Transformer],
    cache: Option<&Cache>,
) {
    let Transformed { assets, outputs } = transformed;
    let is_variant = |o: &TransformOutput| o.image.as_ref().is_some_and(|i| i.variant_of.is_some());
    // Positions of the sources in `assets`.
    let at: Vec<usize> = (0..assets.len())
        .filter(|&i| !is_variant(&outputs[i]))
        .collect();
    let mut sources: Vec<Asset> = at.iter().map(|&i| assets[i].clone()).collect();
    let mut made: Vec<TransformOutput> = at.iter().map(|_| TransformOutput::default()).collect();
    let mut ran = vec![false; sources.len()];
    let mut items = Vec::new();
    let mut chosen = vec![false; sources.len()];
    for &i in stale {
        let Ok(k) = at.binary_search(&i) else {
            continue;
        };
        match load(&mut sources[k]) {
            Ok(()) => {
                // Read now: from here on, like any file this build read.
                sources[k].known = None;
                items.push(k);
                chosen[k] = true;
            }
            Err(d) => {
                outputs[i] = TransformOutput {
                    diagnostics: vec![*d],
                    ..Default::default()
                }
            }
        }
    }
    let stage = Stage {
        config,
        transformers,
        cache,
    };
    stage.run(&sources, &items, &|| {}, &mut made, &mut ran, true);
    // Runs those that read a file kiln had not loaded again, loading it.
    stage.settle(&mut sources, &mut made, &mut ran);
    for (k, source) in sources.into_iter().enumerate() {
        let i = at[k];
        // A file that could not be loaded carries its error.
        if chosen[k] || !made[k].diagnostics.is_empty() {
            outputs[i] = std::mem::take(&mut made[k]);
        }
        assets[i] = source;
    }
}

/// Whether kiln has not loaded `asset`'s bytes (the file index let it skip reading the file).
fn unloaded(asset: &Asset) -> bool {
    asset.known.is_some() && asset.bytes.is_empty() && asset.size() > 0
}

/// Reads the bytes of an asset kiln had not loaded, checking they are the ones the index knew.
fn load(asset: &mut Asset) -> Result<(), Box<Diagnostic>> {
    if !unloaded(asset) {
        return Ok(());
    }
    let error = |message: String| Box::new(Diagnostic::error("io", asset.display_path(), message));
    let bytes = std::fs::read(&asset.path).map_err(|e| error(format!("cannot read it: {e}")))?;
    if blake3::hash(&bytes) != asset.hash {
        return Err(error(
            "its contents are not the ones kiln recorded for its size and modification time \
             (edited without changing either, or during this build): touch it, or build with \
             `--no-cache`"
                .to_owned(),
        ));
    }
    asset.bytes = bytes.into();
    Ok(())
}

/// The settings a transform stage runs with.
struct Stage<'a> {
    config: &'a Config,
    transformers: &'a [&'a dyn Transformer],
    cache: Option<&'a Cache>,
}

impl Stage<'_> {
    /// Runs a transformer again on every output in `ran` whose transform read a file kiln had
    /// not loaded, after reading that file, until none did.
    /// A file that cannot be loaded gets an error (the build fails) and is not tried again.
    fn settle(&self, assets: &mut [Asset], outputs: &mut [TransformOutput], ran: &mut [bool]) {
        let mut failed = BTreeSet::new();
        loop {
            let index = |logical: &str| {
                assets
                    .binary_search_by(|a| a.logical.as_str().cmp(logical))
                    .ok()
            };
            let mut missing = BTreeSet::new();
            let mut again = Vec::new();
            for i in (0..outputs.len()).filter(|&i| ran[i]) {
                let unread: Vec<usize> = (outputs[i].dependencies.iter())
                    .filter_map(|d| index(d))
                    .filter(|&j| unloaded(&assets[j]) && !failed.contains(&j))
                    .collect();
                if !unread.is_empty() {
                    missing.extend(unread);
                    again.push(i);
                }
            }
            for j in missing {
                if let Err(d) = load(&mut assets[j]) {
                    outputs[j].diagnostics.push(*d);
                    failed.insert(j);
                }
            }
            if again.is_empty() {
                return;
            }
            ran.fill(false);
            self.run(assets, &again, &|| {}, outputs, ran, false);
        }
    }

    /// Transforms the assets `items` (indices into `assets`) into `outputs`, setting `ran[i]`
    /// for each one a transformer ran on (rather than its output coming from the cache or the
    /// file index). With `look_up` false, the cache is not asked (it was, and had nothing).
    fn run(
        &self,
        assets: &[Asset],
        items: &[usize],
        on_done: &(dyn Fn() + Sync),
        outputs: &mut [TransformOutput],
        ran: &mut [bool],
        look_up: bool,
    ) {
        let Stage {
            config,
            transformers,
            cache,
        } = *self;
        // Content hashes, for cache keys and for checking cached outputs' dependencies.
        let content_of = |dependency: &str| dependency_hash(assets, dependency, |_| true);
        // An output made while a file it read was not loaded is not this file's output: it is
        // made again (see `settle`) and never cached.
        let complete = |out: &TransformOutput| {
            (out.dependencies.iter()).all(|d| {
                let i = assets.binary_search_by(|a| a.logical.as_str().cmp(d)).ok();
                i.is_none_or(|i| !unloaded(&assets[i]))
            })
        };
        let fingerprint = config.transform_fingerprint();
        // Largest first, one task per asset: a big file started last would leave the other
        // cores idle at the end of the stage.
        let mut order: Vec<usize> = items.to_vec();
        order.sort_by_key(|&i| std::cmp::Reverse(assets[i].bytes.len()));
        let work = |i: usize| -> (TransformOutput, bool) {
            let asset = &assets[i];
            let input = TransformInput {
                asset,
                all: assets,
                config,
            };
            let transformer = transformers.iter().find(|t| t.accepts(asset.kind));
            // An unchanged file the index recorded (discovery checked its files are in `out`).
            if let (Some(_), Some(recorded)) = (
                transformer,
                (asset.known.as_ref()).and_then(|k| k.output.as_ref()),
            ) {
                on_done();
                return (kept_output(recorded), false);
            }
            let out = match (transformer, cache) {
                (Some(t), Some(cache)) => {
                    let key = transform_key(t.name(), &fingerprint, &asset.logical, &asset.hash);
                    let cached = look_up.then(|| cache.get("transform", &key)).flatten();
                    let cached = cached.and_then(|payload| {
                        crate::cache::decode_transform(payload, &asset.display_path(), content_of)
                    });
                    match cached {
                        Some(out) => (out, false),
                        None => {
                            let mut out = run_guarded(*t, &input);
                            if !out.failed() && complete(&out) {
                                // Bytes that link will not change: hash them for SRI once, here.
                                if out.references.is_empty() && out.map_comment.is_none() {
                                    out.integrity = Some(crate::integrity::sri(&out.bytes));
                                }
                                for v in &mut out.variants {
                                    v.integrity = Some(crate::integrity::sri(&v.bytes));
                                }
                                if let Some(payload) = crate::cache::encode_transform(
                                    &out,
                                    &asset.display_path(),
                                    content_of,
                                ) {
                                    cache.put("transform", &key, &payload);
                                }
                            }
                            (out, true)
                        }
                    }
                }
                (Some(t), None) => (run_guarded(*t, &input), true),
                (None, _) => (TransformOutput::passthrough(asset), false),
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
        let done = run_bounded(&order, &estimates, config.memory_budget(), &work);
        for (i, (out, by_transformer)) in done {
            outputs[i] = out;
            ran[i] = by_transformer;
        }
    }
}

/// The output of a file the file index recorded, without its bytes.
fn kept_output(recorded: &Recorded) -> TransformOutput {
    if let Some(link) = &recorded.link {
        return TransformOutput {
            references: link.references.clone(),
            integrity: Some(recorded.file.integrity.clone()),
            kept: Some(recorded.file.clone()),
            prior: Some(link.clone()),
            ..Default::default()
        };
    }
    TransformOutput {
        integrity: Some(recorded.file.integrity.clone()),
        image: recorded.image.clone(),
        variants: (recorded.variants.iter())
            .map(|v| Variant {
                logical: v.logical.clone(),
                bytes: bytes::Bytes::new(),
                width: v.width,
                height: v.height,
                integrity: Some(v.file.integrity.clone()),
                kept: Some(v.file.clone()),
            })
            .collect(),
        kept: Some(recorded.file.clone()),
        ..Default::default()
    }
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
            // A variant kiln did not load: its facts stand for its bytes.
            if let Some(kept) = &variant.kept
                && let Ok(hash) = blake3::Hash::from_hex(&kept.blake3)
            {
                asset.hash = hash;
                asset.known = Some(Known {
                    stamp: Stamp {
                        size: kept.size,
                        mtime_ns: 0,
                    },
                    blake3: kept.blake3.clone(),
                    integrity: kept.integrity.clone(),
                    output: None,
                });
            }
            let out = TransformOutput {
                bytes: asset.bytes.clone(),
                integrity: variant.integrity,
                kept: variant.kept,
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
