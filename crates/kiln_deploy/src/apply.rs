//! Apply: read the bucket's side (listing, ledger, lock), plan, then carry the plan out in
//! phases: lock, fingerprinted files, unhashed files, manifests (kiln's last), deletions, ledger,
//! unlock.
//!
//! If anything fails before the manifests, the deploy stops there: the bucket's manifests still
//! describe the previous release, whose files are all still in place, and a re-run completes the
//! deploy (what was uploaded is recorded in the ledger, so it is not uploaded again).
//! Owns the bucket-side I/O; deciding what to do is [`crate::plan`]'s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use kiln_core::Progress;
use object_store::path::Path as Key;
use object_store::{
    Attribute, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, UpdateVersion, WriteMultipart,
};

use crate::ledger::{
    LEDGER_KEY, LEDGER_VERSION, LOCK_KEY, LOCK_LEASE, Ledger, Lock, ObjectRecord, rfc3339,
};
use crate::local::{Class, Headers, LocalBuild, LocalFile, read_file};
use crate::plan::{self, Plan, Remote, RemoteHead, RemoteObject, Settings};
use crate::store::{Target, classify};
use crate::{DeployError, Options, Outcome, Services};

/// The metadata key of an object's SHA-256 (`x-amz-meta-kiln-sha256`).
pub const SHA256_METADATA: &str = "kiln-sha256";

/// Size of each part of a multipart upload.
const PART_SIZE: usize = 8 << 20;

/// The store and where under it this deploy goes.
#[derive(Clone)]
struct Bucket {
    store: Arc<dyn ObjectStore>,
    target: Target,
}

impl Bucket {
    fn key(&self, path: &str) -> Result<Key, DeployError> {
        Key::parse(format!("{}{path}", self.target.prefix)).map_err(|e| DeployError::BadBuild {
            path: path.into(),
            message: format!("not a valid object key: {e}"),
        })
    }

    fn err(&self, action: &str, path: &str, e: &object_store::Error) -> DeployError {
        classify(
            &self.target,
            action,
            &format!("{}{path}", self.target.prefix),
            e,
        )
    }

    /// The bytes and ETag of `path`, or None if there is no such object.
    async fn get(&self, path: &str) -> Result<Option<(Bytes, Option<String>)>, DeployError> {
        let key = self.key(path)?;
        match self.store.get(&key).await {
            Ok(r) => {
                let etag = r.meta.e_tag.clone();
                let bytes = r.bytes().await.map_err(|e| self.err("read", path, &e))?;
                Ok(Some((bytes, etag)))
            }
            Err(object_store::Error::NotFound { source, .. })
                if !source.to_string().contains("NoSuchBucket") =>
            {
                Ok(None)
            }
            Err(e) => Err(self.err("read", path, &e)),
        }
    }

    /// Every object under the prefix but kiln's own `.kiln/` ones, by path relative to it.
    async fn list(&self) -> Result<BTreeMap<String, RemoteObject>, DeployError> {
        let prefix = self.target.prefix.trim_end_matches('/');
        let prefix = (!prefix.is_empty())
            .then(|| Key::parse(prefix))
            .transpose()
            .map_err(|e| DeployError::Config {
                key: "deploy.prefix".to_owned(),
                message: e.to_string(),
            })?;
        let objects: Vec<_> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(|e| self.err("list", "", &e))?;
        Ok(objects
            .into_iter()
            .filter_map(|o| {
                let path = o
                    .location
                    .as_ref()
                    .strip_prefix(self.target.prefix.as_str())?
                    .to_owned();
                (!path.starts_with(".kiln/")).then_some((
                    path,
                    RemoteObject {
                        size: o.size,
                        etag: o.e_tag,
                        last_modified: o.last_modified.into(),
                    },
                ))
            })
            .collect())
    }

    /// What a HEAD tells of `path`.
    async fn head(&self, path: &str) -> Result<RemoteHead, DeployError> {
        let key = self.key(path)?;
        let r = self
            .store
            .get_opts(&key, GetOptions::new().with_head(true))
            .await
            .map_err(|e| self.err("read", path, &e))?;
        let attr = |a: &Attribute| r.attributes.get(a).map(|v| v.to_string());
        Ok(RemoteHead {
            sha256: attr(&Attribute::Metadata(SHA256_METADATA.into())),
            headers: Headers {
                content_type: attr(&Attribute::ContentType).unwrap_or_default(),
                cache_control: attr(&Attribute::CacheControl).unwrap_or_default(),
                content_encoding: attr(&Attribute::ContentEncoding),
            },
        })
    }

    /// Uploads one file with its headers and SHA-256; returns (sha256, ETag).
    async fn upload(
        &self,
        build: &LocalBuild,
        file: &LocalFile,
        multipart_threshold: u64,
    ) -> Result<(String, Option<String>), DeployError> {
        let key = self.key(&file.path)?;
        let (bytes, sha256) = {
            let (out, file) = (build.out.clone(), file.clone());
            tokio::task::spawn_blocking(move || read_file(&out, &file))
                .await
                .map_err(|e| DeployError::Internal(e.to_string()))??
        };
        let bytes = Bytes::from(bytes);
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::ContentType,
            file.headers.content_type.clone().into(),
        );
        attributes.insert(
            Attribute::CacheControl,
            file.headers.cache_control.clone().into(),
        );
        if let Some(encoding) = &file.headers.content_encoding {
            attributes.insert(Attribute::ContentEncoding, encoding.clone().into());
        }
        attributes.insert(
            Attribute::Metadata(SHA256_METADATA.into()),
            sha256.clone().into(),
        );
        let result = if file.size > multipart_threshold {
            let upload = self
                .store
                .put_multipart_opts(
                    &key,
                    object_store::PutMultipartOptions {
                        attributes,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| self.err("upload", &file.path, &e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut at = 0;
            while at < bytes.len() {
                if let Err(e) = writer.wait_for_capacity(4).await {
                    // Parts of an unfinished upload are stored (and billed) until aborted.
                    let _ = writer.abort().await;
                    return Err(self.err("upload", &file.path, &e));
                }
                let end = (at + PART_SIZE).min(bytes.len());
                writer.put(bytes.slice(at..end));
                at = end;
            }
            writer.finish().await
        } else {
            self.store
                .put_opts(
                    &key,
                    PutPayload::from(bytes),
                    PutOptions {
                        attributes,
                        ..Default::default()
                    },
                )
                .await
        }
        .map_err(|e| self.err("upload", &file.path, &e))?;
        Ok((sha256, result.e_tag))
    }

    /// Writes JSON to `path` only if the object is still at `etag` (None: only if absent).
    async fn put_if(
        &self,
        path: &str,
        json: Vec<u8>,
        etag: Option<String>,
    ) -> Result<Option<String>, Conflict> {
        let key = self.key(path).map_err(Conflict::Other)?;
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, "application/json".into());
        attributes.insert(Attribute::CacheControl, "no-store".into());
        let mode = match etag {
            Some(e_tag) => PutMode::Update(UpdateVersion {
                e_tag: Some(e_tag),
                version: None,
            }),
            None => PutMode::Create,
        };
        let options = PutOptions {
            mode,
            attributes,
            ..Default::default()
        };
        match self.store.put_opts(&key, json.into(), options).await {
            Ok(r) => Ok(r.e_tag),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Err(Conflict::Lost),
            Err(e) => Err(Conflict::Other(self.err("write", path, &e))),
        }
    }
}

/// A conditional write lost against another writer, or failed.
enum Conflict {
    Lost,
    Other(DeployError),
}

/// The lock this deploy holds, renewed in the background until [`release`].
struct Held {
    /// The lock object's current ETag.
    etag: Arc<Mutex<Option<String>>>,
    /// When it was last written: past the lease (less a margin) it may have lapsed.
    renewed: Arc<Mutex<Instant>>,
    /// Another deploy took it over.
    lost: Arc<AtomicBool>,
    stop: Arc<tokio::sync::Notify>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Held {
    /// Whether this deploy may still change the bucket.
    fn check(&self, target: &Target) -> Result<(), DeployError> {
        let stale = self.renewed.lock().expect("renewal time").elapsed() > LOCK_LEASE * 3 / 4;
        if self.lost.load(Ordering::SeqCst) || stale {
            return Err(DeployError::LockLost {
                target: target.to_string(),
            });
        }
        Ok(())
    }
}

/// What the bucket holds: its listing, kiln's ledger (and the ledger's ETag), the lock.
struct Survey {
    remote: Remote,
    ledger_etag: Option<String>,
    lock: Option<(Lock, Option<String>)>,
}

/// Reads the bucket's side, and the HEAD of each listed object the ledger does not know (a
/// lost ledger, a first deploy over an upload by other means), hashing those local files.
async fn survey(
    bucket: &Bucket,
    build: &mut LocalBuild,
    concurrency: usize,
) -> Result<Survey, DeployError> {
    // The listing first: it is the request that tells a missing bucket or bad credentials.
    let objects = bucket.list().await?;
    let (ledger, lock) = tokio::try_join!(bucket.get(LEDGER_KEY), bucket.get(LOCK_KEY))?;
    let target = &bucket.target;
    let (ledger, ledger_etag) = match ledger {
        Some((bytes, etag)) => {
            let ledger: Ledger =
                serde_json::from_slice(&bytes).map_err(|e| DeployError::Storage {
                    target: target.to_string(),
                    action: "read".to_owned(),
                    key: format!("{}{LEDGER_KEY}", target.prefix),
                    message: format!("not a kiln ledger ({e}); delete it to start afresh"),
                })?;
            if ledger.version > LEDGER_VERSION {
                return Err(DeployError::Storage {
                    target: target.to_string(),
                    action: "read".to_owned(),
                    key: format!("{}{LEDGER_KEY}", target.prefix),
                    message: format!(
                        "written by a newer kiln (ledger version {}): upgrade kiln",
                        ledger.version
                    ),
                });
            }
            (ledger, etag)
        }
        None => (Ledger::default(), None),
    };
    // An unreadable lock counts as lapsed (its `expires` does not parse): it is taken over.
    let lock = lock.map(|(bytes, etag)| {
        let lock = serde_json::from_slice::<Lock>(&bytes).unwrap_or_else(|_| Lock {
            holder: "an unreadable lock".to_owned(),
            since: String::new(),
            expires: String::new(),
        });
        (lock, etag)
    });
    let mut remote = Remote {
        objects,
        heads: BTreeMap::new(),
        ledger,
    };
    let unknown: BTreeSet<String> = plan::needs_head(build, &remote).into_iter().collect();
    if !unknown.is_empty() {
        let heads: Vec<(String, RemoteHead)> =
            futures::stream::iter(unknown.iter())
                .map(|path| async move {
                    Ok::<_, DeployError>((path.clone(), bucket.head(path).await?))
                })
                .buffer_unordered(concurrency)
                .try_collect()
                .await?;
        remote.heads = heads.into_iter().collect();
        let out = build.out.clone();
        let files = std::mem::take(&mut build.files);
        build.files = tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .map(|mut f| {
                    if f.sha256.is_none() && unknown.contains(&f.path) {
                        f.sha256 = Some(read_file(&out, &f)?.1);
                    }
                    Ok(f)
                })
                .collect::<Result<Vec<_>, DeployError>>()
        })
        .await
        .map_err(|e| DeployError::Internal(e.to_string()))??;
    }
    Ok(Survey {
        remote,
        ledger_etag,
        lock,
    })
}

/// Runs a deploy of `build` (see [`crate::deploy`]).
pub async fn run(
    services: &Services,
    mut build: LocalBuild,
    config: &kiln_core::Config,
    options: Options,
    progress: &dyn Progress,
) -> Result<Outcome, DeployError> {
    let started = Instant::now();
    let bucket = Bucket {
        store: services.store.clone(),
        target: services.target.clone(),
    };
    let target = &services.target;
    let deploy = &config.deploy;
    let settings = Settings {
        keep_releases: deploy.keep_releases,
        grace: deploy.grace().map_err(DeployError::from_config)?,
        purge: services.purger.is_some(),
        cors_origins: deploy.cors_origins.clone(),
    };
    let mut seen = survey(&bucket, &mut build, deploy.concurrency).await?;
    if let Some((lock, _)) = &seen.lock
        && !lock.expired(SystemTime::now())
        && !options.dry_run
    {
        return Err(busy(target, lock));
    }
    let plan = plan::plan(&build, &seen.remote, &settings, SystemTime::now());
    let refuse = |plan: &Plan| {
        if plan.deletes.len() > deploy.max_deletes && !options.yes {
            return Err(DeployError::TooManyDeletes {
                count: plan.deletes.len(),
                max: deploy.max_deletes,
            });
        }
        Ok(())
    };
    if !options.dry_run && plan.ledger_changed {
        refuse(&plan)?;
    }
    let mut outcome = Outcome {
        target: target.to_string(),
        public_url: build.public_url.clone(),
        dry_run: options.dry_run,
        plan: plan.clone(),
        uploaded: 0,
        uploaded_bytes: 0,
        deleted: 0,
        purge: None,
        verify: None,
        elapsed: started.elapsed(),
    };
    if options.dry_run {
        // What the purge would send, without sending it.
        if let (Some(purger), false) = (&services.purger, plan.purge.is_empty()) {
            outcome.purge = Some(purger.plan(&build.public_url, &plan.purge)?);
        }
        return Ok(outcome);
    }
    if !plan.ledger_changed && plan.purge.is_empty() {
        return Ok(outcome);
    }

    let held = acquire(&bucket, seen.lock.as_ref()).await?;
    let result = async {
        // Another deploy may have finished between our reading and our locking: then what we
        // planned is stale, so read and plan again, under the lock.
        let etag_now = bucket.get(LEDGER_KEY).await?.and_then(|(_, etag)| etag);
        if etag_now != seen.ledger_etag {
            seen = survey(&bucket, &mut build, deploy.concurrency).await?;
            let replanned = plan::plan(&build, &seen.remote, &settings, SystemTime::now());
            refuse(&replanned)?;
            outcome.plan = replanned;
        }
        let before = Written {
            before: seen.remote.ledger,
            etag: seen.ledger_etag,
        };
        carry_out(
            services,
            &bucket,
            &build,
            &mut outcome,
            deploy,
            &held,
            before,
            progress,
        )
        .await
    }
    .await;
    release(&bucket, held).await;
    result?;
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

fn busy(target: &Target, lock: &Lock) -> DeployError {
    DeployError::Busy {
        target: target.to_string(),
        holder: lock.holder.clone(),
        since: lock.since.clone(),
        expires: lock.expires.clone(),
    }
}

/// The ledger in the bucket when the deploy started, and its ETag.
struct Written {
    before: Ledger,
    etag: Option<String>,
}

/// The phases, the ledger, the purge and the deletions, under the lock.
#[allow(clippy::too_many_arguments)]
async fn carry_out(
    services: &Services,
    bucket: &Bucket,
    build: &LocalBuild,
    outcome: &mut Outcome,
    deploy: &kiln_core::config::DeployConfig,
    held: &Held,
    written: Written,
    progress: &dyn Progress,
) -> Result<(), DeployError> {
    let by_path: BTreeMap<&str, &LocalFile> =
        build.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let threshold = deploy.multipart_threshold_mb << 20;
    // CORS before any file: when the new manifests are live, fonts and modules already load.
    if let Some(origins) = &outcome.plan.cors {
        crate::store::set_cors(
            &services.client,
            &bucket.target,
            &services.credentials,
            origins,
        )
        .await?;
    }
    let uploads = outcome.plan.uploads.clone();
    progress.start(uploads.len());
    let mut done: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    let mut failure = None;
    for phase in [Class::Hashed, Class::Unhashed, Class::Manifest] {
        let files: Vec<&LocalFile> = uploads
            .iter()
            .filter(|u| u.class == phase)
            .map(|u| by_path[u.path.as_str()])
            .collect();
        // Manifests one at a time, in the planned order: kiln's own is the very last write.
        let concurrency = if phase == Class::Manifest {
            1
        } else {
            deploy.concurrency
        };
        // After a failure no upload starts, but those under way finish and are recorded.
        let stop = AtomicBool::new(false);
        let stop = &stop;
        let mut stream = futures::stream::iter(files)
            .map(|f| async move {
                if stop.load(Ordering::SeqCst) {
                    return (f, None);
                }
                if f.class == Class::Manifest
                    && let Err(e) = held.check(&bucket.target)
                {
                    return (f, Some(Err(e)));
                }
                (f, Some(bucket.upload(build, f, threshold).await))
            })
            .buffer_unordered(concurrency);
        while let Some((file, result)) = stream.next().await {
            match result {
                Some(Ok(r)) => {
                    outcome.uploaded += 1;
                    outcome.uploaded_bytes += file.size;
                    done.insert(file.path.clone(), r);
                    progress.advance();
                }
                Some(Err(e)) => {
                    stop.store(true, Ordering::SeqCst);
                    failure.get_or_insert(e);
                }
                None => {}
            }
        }
        if failure.is_none()
            && let Err(e) = held.check(&bucket.target)
        {
            failure = Some(e);
        }
        if failure.is_some() {
            break;
        }
    }
    progress.finish();
    let mut ledger = outcome.plan.ledger.clone();
    for (path, (sha256, etag)) in &done {
        if let Some(rec) = ledger.objects.get_mut(path) {
            rec.sha256 = sha256.clone();
            rec.etag = etag.clone();
        }
    }
    if let Some(e) = failure {
        // Record what did land, so the re-run does not upload it again and pruning can find
        // it if it is never used: an object the live release has keeps its record's dates, a
        // new one is in no release yet. Not if another deploy owns the bucket now.
        if held.check(&bucket.target).is_ok() {
            let mut partial = written.before;
            for path in done.keys() {
                if let Some(rec) = ledger.objects.get(path) {
                    let retired = match partial.objects.get(path) {
                        Some(old) => old.retired.clone(),
                        None => Some(rfc3339(SystemTime::now())),
                    };
                    partial.objects.insert(
                        path.clone(),
                        ObjectRecord {
                            retired,
                            ..rec.clone()
                        },
                    );
                }
            }
            let _ = write_ledger(bucket, &partial, written.etag).await;
        }
        return Err(e);
    }
    held.check(&bucket.target)?;
    // The release is live: record it, with the paths to purge as pending and the objects about
    // to be deleted still listed (so a failed purge or deletion is retried by the next deploy).
    let mut pending = ledger.clone();
    for d in &outcome.plan.deletes {
        if let Some(rec) = written.before.objects.get(&d.path) {
            pending.objects.insert(d.path.clone(), rec.clone());
        }
    }
    let etag = write_ledger(bucket, &pending, written.etag).await?;
    let mut settled = pending.clone();
    let mut purge_error = None;
    if let (Some(purger), false) = (&services.purger, outcome.plan.purge.is_empty()) {
        match purger
            .purge(
                &build.public_url,
                &outcome.plan.purge,
                &format!(
                    "kiln-{}-{}",
                    outcome.plan.release,
                    SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_millis()
                ),
            )
            .await
        {
            Ok(report) => {
                settled.purge.clear();
                outcome.purge = Some(report);
            }
            Err(e) => purge_error = Some(e),
        }
    }
    let mut delete_error = None;
    if !outcome.plan.deletes.is_empty() {
        let keys: Vec<Key> = outcome
            .plan
            .deletes
            .iter()
            .map(|d| bucket.key(&d.path))
            .collect::<Result<_, _>>()?;
        let results: Vec<Result<Key, object_store::Error>> = bucket
            .store
            .delete_stream(futures::stream::iter(keys.into_iter().map(Ok)).boxed())
            .collect()
            .await;
        for (d, r) in outcome.plan.deletes.iter().zip(results) {
            match r {
                Ok(_) => {
                    outcome.deleted += 1;
                    settled.objects.remove(&d.path);
                }
                Err(e) => {
                    delete_error.get_or_insert_with(|| bucket.err("delete", &d.path, &e));
                }
            }
        }
    }
    if settled != pending {
        write_ledger(bucket, &settled, etag).await?;
    }
    match (delete_error, purge_error) {
        (Some(e), _) | (None, Some(e)) => Err(e),
        (None, None) => Ok(()),
    }
}

/// Writes the ledger if it is still at `etag` (None: if there is none); returns its new ETag.
async fn write_ledger(
    bucket: &Bucket,
    ledger: &Ledger,
    etag: Option<String>,
) -> Result<Option<String>, DeployError> {
    let json = serde_json::to_vec(ledger).expect("ledger serialises");
    match bucket.put_if(LEDGER_KEY, json, etag).await {
        Ok(etag) => Ok(etag),
        Err(Conflict::Lost) => Err(DeployError::LockLost {
            target: bucket.target.to_string(),
        }),
        Err(Conflict::Other(e)) => Err(e),
    }
}

/// Takes the deploy lock (over a lapsed one, given with its ETag) and renews it in the
/// background until [`release`].
async fn acquire(
    bucket: &Bucket,
    lapsed: Option<&(Lock, Option<String>)>,
) -> Result<Held, DeployError> {
    let lock = Lock::new(SystemTime::now());
    let json = serde_json::to_vec(&lock).expect("lock serialises");
    let etag = match bucket
        .put_if(LOCK_KEY, json, lapsed.and_then(|(_, e)| e.clone()))
        .await
    {
        Ok(etag) => etag,
        Err(Conflict::Lost) => {
            // Another deploy took it between our reading and our writing.
            let holder = bucket
                .get(LOCK_KEY)
                .await
                .ok()
                .flatten()
                .and_then(|(b, _)| serde_json::from_slice::<Lock>(&b).ok());
            return Err(match holder {
                Some(l) => busy(&bucket.target, &l),
                None => DeployError::LockLost {
                    target: bucket.target.to_string(),
                },
            });
        }
        Err(Conflict::Other(e)) => return Err(e),
    };
    let etag = Arc::new(Mutex::new(etag));
    let renewed = Arc::new(Mutex::new(Instant::now()));
    let lost = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(tokio::sync::Notify::new());
    let renewer = {
        let (etag, renewed, lost, stop) =
            (etag.clone(), renewed.clone(), lost.clone(), stop.clone());
        let bucket = bucket.clone();
        let since = lock.since;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(LOCK_LEASE / 3) => {}
                    _ = stop.notified() => return,
                }
                let lock = Lock {
                    since: since.clone(),
                    ..Lock::new(SystemTime::now())
                };
                let json = serde_json::to_vec(&lock).expect("lock serialises");
                let current = etag.lock().expect("lock etag").clone();
                let attempt = Instant::now();
                match bucket.put_if(LOCK_KEY, json, current).await {
                    Ok(new) => {
                        *etag.lock().expect("lock etag") = new;
                        *renewed.lock().expect("renewal time") = attempt;
                    }
                    Err(Conflict::Lost) => {
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    // A passing failure: the next renewal comes before the lease runs out,
                    // and `Held::check` stops the deploy if none succeeds in time.
                    Err(Conflict::Other(_)) => {}
                }
            }
        })
    };
    Ok(Held {
        etag,
        renewed,
        lost,
        stop,
        renewer,
    })
}

/// Stops renewing (letting a renewal under way finish) and releases the lock if it is still
/// ours, by marking it lapsed with a conditional write (no delete permission needed, and never
/// another deploy's lock). Best effort: a lock left behind lapses by itself.
async fn release(bucket: &Bucket, held: Held) {
    held.stop.notify_one();
    let _ = held.renewer.await;
    if held.lost.load(Ordering::SeqCst) {
        return;
    }
    let ours = held.etag.lock().expect("lock etag").clone();
    let released = Lock {
        expires: rfc3339(SystemTime::UNIX_EPOCH),
        ..Lock::new(SystemTime::now())
    };
    let json = serde_json::to_vec(&released).expect("lock serialises");
    let _ = bucket.put_if(LOCK_KEY, json, ours).await;
}
