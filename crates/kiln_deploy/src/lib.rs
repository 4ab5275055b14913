//! kiln_deploy: publish the last successful kiln build to S3-compatible object storage (the
//! origin of a CDN), with the right headers, in a safe order, pruning old releases.
//!
//! A deploy is *plan, then apply*:
//! 1. [`local::read_build`] reads the output folder through kiln's `manifest.json`;
//! 2. [`apply::run`] lists the bucket and reads kiln's ledger there, and [`plan::plan`] (pure)
//!    decides every upload and deletion with its reason;
//! 3. [`apply::run`] carries the plan out under a lock: the bucket's CORS rules, fingerprinted
//!    files, then unhashed ones, then the manifests, kiln's last; the ledger; a purge of the CDN
//!    ([`cdn`]) of the unhashed names that changed; then deletions of objects no kept release
//!    needs.
//! 4. With `verify`, [`verify`] fetches what changed (and a sample of the rest) through the CDN
//!    and checks it is what was built.
//!
//! It does not build, and it never reads credentials from configuration (see [`store`]).

pub mod apply;
pub mod cdn;
pub mod ledger;
pub mod local;
pub mod plan;
pub mod remote_cache;
pub mod secrets;
pub mod store;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use kiln_core::config::CdnProvider;
use kiln_core::{Config, ConfigError, Progress};
use object_store::ObjectStore;
use object_store::aws::AwsCredentialProvider;
use serde::Serialize;

pub use cdn::PurgeReport;
pub use plan::{Delete, Plan, Reason, Upload};
pub use verify::{Problem, ProblemKind, VerifyOptions, VerifyReport};

/// What the caller asks for.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// Plan only: read the bucket, change nothing.
    pub dry_run: bool,
    /// Allow more deletions than `max_deletes`.
    pub yes: bool,
    /// After the deploy, check what the CDN serves (see [`verify`]).
    pub verify: Option<VerifyOptions>,
}

impl Options {
    /// Options with `dry_run` and `yes` as given.
    pub fn new(dry_run: bool, yes: bool) -> Self {
        Options {
            dry_run,
            yes,
            verify: None,
        }
    }

    /// Also verify the deploy through the CDN.
    pub fn with_verify(mut self, verify: VerifyOptions) -> Self {
        self.verify = Some(verify);
        self
    }
}

/// The clients a deploy talks through: the bucket, plain HTTP (CORS rules, CDN APIs, verify),
/// and the CDN purger if `[deploy.cdn]` purges.
pub struct Services {
    /// The bucket.
    pub store: Arc<dyn ObjectStore>,
    /// Where.
    pub target: store::Target,
    /// The bucket's credentials (CORS rules, CloudFront).
    pub credentials: AwsCredentialProvider,
    /// HTTP.
    pub client: reqwest::Client,
    /// The CDN.
    pub purger: Option<cdn::Purger>,
}

/// What a deploy did (or, with `dry_run`, would do).
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// `s3://bucket/prefix`, and the endpoint if not AWS.
    pub target: String,
    /// The public URL of the build.
    pub public_url: String,
    /// Nothing was changed.
    pub dry_run: bool,
    /// The plan.
    #[serde(flatten)]
    pub plan: Plan,
    /// Objects uploaded.
    pub uploaded: usize,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Objects deleted.
    pub deleted: usize,
    /// The CDN purge made (or, in a dry run, planned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge: Option<PurgeReport>,
    /// What `verify` found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
    /// Wall time.
    #[serde(serialize_with = "millis", rename = "elapsed_ms")]
    pub elapsed: Duration,
}

pub(crate) fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Why a deploy failed. Messages never contain a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// A setting is missing or wrong (exit status 2).
    #[error("invalid `{key}`: {message}")]
    Config {
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
    /// There is no build to deploy.
    #[error(
        "{}: no build to deploy (no manifest.json): run `kiln build` first",
        out.display()
    )]
    NoBuild {
        /// The output folder.
        out: PathBuf,
    },
    /// The output folder is not a complete build.
    #[error("{}: {message}", path.display())]
    BadBuild {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A file changed while it was being deployed.
    #[error(
        "{}: changed since the build (is a build running?): run `kiln build`, then deploy again",
        path.display()
    )]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// Reading a local file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No credentials, or the store refused them.
    #[error("{0}")]
    Credentials(String),
    /// The bucket does not exist.
    #[error("{target}: the bucket does not exist: create it, or fix `[deploy] bucket`")]
    NoSuchBucket {
        /// Where.
        target: String,
    },
    /// The credentials may not do this.
    #[error(
        "{target}: access denied to {action} `{key}`: the credentials need s3:ListBucket, \
         s3:GetObject, s3:PutObject and s3:DeleteObject on the bucket"
    )]
    AccessDenied {
        /// Where.
        target: String,
        /// What was attempted.
        action: String,
        /// The key.
        key: String,
    },
    /// The store could not be reached.
    #[error(
        "{target}: cannot reach the storage ({detail}): check `[deploy] endpoint` and the network"
    )]
    Unreachable {
        /// Where.
        target: String,
        /// Why, in a few words.
        detail: String,
    },
    /// The store answered with an error.
    #[error("{target}: {action} `{key}` failed: {message}")]
    Storage {
        /// Where.
        target: String,
        /// What was attempted.
        action: String,
        /// The key.
        key: String,
        /// The store's error code or status.
        message: String,
    },
    /// Another deploy holds the lock.
    #[error(
        "{target}: another deploy is in progress ({holder}, since {since}); try again when it \
         is done (if it died, its lock lapses at {expires})"
    )]
    Busy {
        /// Where.
        target: String,
        /// Who.
        holder: String,
        /// Since when.
        since: String,
        /// When the lock lapses.
        expires: String,
    },
    /// The lock was taken over (this deploy was too slow to renew it) or the ledger changed.
    #[error("{target}: another deploy changed the bucket during this one: run `kiln deploy` again")]
    LockLost {
        /// Where.
        target: String,
    },
    /// Pruning would delete more than `max_deletes` objects.
    #[error(
        "this deploy would delete {count} objects, more than `[deploy] max_deletes` = {max}; \
         nothing was changed. Check the build and the prefix, then run again with --yes"
    )]
    TooManyDeletes {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The files are deployed, but purging the CDN failed.
    #[error(
        "deployed, but purging the CDN ({provider}) failed: {detail}. It may serve the old \
         manifests until they expire; the next `kiln deploy` purges them again"
    )]
    Purge {
        /// The provider.
        provider: String,
        /// Why.
        detail: String,
    },
    /// Deployed and purged, but the CDN did not finish invalidating in time to verify.
    #[error(
        "deployed and purged, but {provider} still reports {what} after {secs}s: run \
         `kiln verify` once it has completed"
    )]
    Pending {
        /// The provider.
        provider: String,
        /// What is still in progress.
        what: String,
        /// How long kiln waited.
        secs: u64,
    },
    /// A bug or a runtime failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DeployError {
    /// A configuration problem: exit status 2 rather than 1.
    pub fn is_config(&self) -> bool {
        matches!(self, DeployError::Config { .. })
    }

    fn from_config(e: ConfigError) -> Self {
        match e {
            ConfigError::Invalid { key, message } => DeployError::Config { key, message },
            other => DeployError::Config {
                key: "deploy".to_owned(),
                message: other.to_string(),
            },
        }
    }

    /// The message, with any credential from the environment masked. No message is built from
    /// one (store errors are reduced to their code); this is defence in depth, and what the CLI
    /// prints.
    pub fn redacted(&self) -> String {
        secrets::redact(&self.to_string())
    }
}

/// Deploys the last successful build of `config` (see the crate docs), reporting upload
/// progress to `progress`. With `options.verify`, then checks the CDN: its report is in
/// [`Outcome::verify`] (problems there are not an `Err`; the CLI exits 1 on them).
pub fn deploy(
    config: &Config,
    options: Options,
    progress: &dyn Progress,
) -> Result<Outcome, DeployError> {
    config.deploy.validate().map_err(DeployError::from_config)?;
    let runtime = runtime()?;
    // The client first (no request yet): a missing bucket setting or credentials are reported
    // before anything is read.
    let connection = store::connect(&config.deploy)?;
    let client = store::http_client()?;
    let purger = match &config.deploy.cdn {
        Some(cdn) if cdn.purge => {
            // A public_url the provider cannot purge is refused before anything changes.
            cdn::calls(cdn, &config.public_url, &[], "check")?;
            Some(cdn::Purger::new(
                cdn,
                client.clone(),
                Some(connection.credentials.clone()),
                !options.dry_run,
            )?)
        }
        _ => None,
    };
    let services = Services {
        store: connection.store,
        target: connection.target,
        credentials: connection.credentials,
        client,
        purger,
    };
    let build = local::read_build(config)?;
    let verify_options = options.verify.clone().filter(|_| !options.dry_run);
    let mut outcome = runtime.block_on(apply::run(&services, build, config, options, progress))?;
    if let Some(mut verify_options) = verify_options {
        // CloudFront takes a while to invalidate: verifying before it has would report the
        // old copies it is about to drop.
        if let (Some(purger), Some(report)) = (&services.purger, &outcome.purge)
            && config.deploy.cdn.as_ref().map(|c| c.provider) == Some(CdnProvider::Cloudfront)
        {
            runtime.block_on(
                purger.wait_for_invalidations(&report.invalidations, Duration::from_secs(900)),
            )?;
        }
        verify_options
            .changed
            .extend(outcome.plan.uploads.iter().map(|u| u.path.clone()));
        let build = local::read_build(config)?;
        let expected = verify::expectations(&build, &verify_options)?;
        outcome.verify = Some(runtime.block_on(verify::check(
            &services.client,
            &build.public_url,
            build.files.len(),
            expected,
            verify_origin(config).as_deref(),
        )));
    }
    Ok(outcome)
}

/// Checks what the CDN serves at `public_url` against the last build (see [`verify`]); needs
/// no credentials.
pub fn verify(config: &Config, options: &VerifyOptions) -> Result<VerifyReport, DeployError> {
    config.deploy.validate().map_err(DeployError::from_config)?;
    let runtime = runtime()?;
    let client = store::http_client()?;
    let build = local::read_build(config)?;
    let expected = verify::expectations(&build, options)?;
    Ok(runtime.block_on(verify::check(
        &client,
        &build.public_url,
        build.files.len(),
        expected,
        verify_origin(config).as_deref(),
    )))
}

/// The `Origin` verify sends: a page's on the configured origins (none without CORS rules).
fn verify_origin(config: &Config) -> Option<String> {
    let origins = &config.deploy.cors_origins;
    origins
        .iter()
        .find(|o| *o != "*")
        .cloned()
        .or_else(|| (!origins.is_empty()).then(|| "https://verify.kiln.invalid".to_owned()))
}

/// A runtime of kiln's own (2 threads: the work is I/O), refusing to nest in the caller's.
fn runtime() -> Result<tokio::runtime::Runtime, DeployError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(DeployError::Internal(
            "kiln_deploy runs its own runtime: call it from outside async code \
             (e.g. with tokio::task::spawn_blocking)"
                .to_owned(),
        ));
    }
    // reqwest's rustls needs a process-wide crypto provider; kiln uses ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| DeployError::Internal(e.to_string()))
}
