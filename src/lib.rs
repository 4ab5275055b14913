//! kiln: a build-time static asset pipeline. Minifies CSS, fingerprints every file with a BLAKE3
//! content hash, rewrites every reference between files to the fingerprinted names, and writes the
//! manifests Django (`staticfiles.json`), Flask (`cache_manifest.json`) and kiln (`manifest.json`)
//! readers use.
//!
//! This crate is the facade: [`Builder`] wires the codec crates (behind features) into the
//! pipeline of [`kiln_core`]. The `kiln` binary is a thin layer over it, and a `build.rs` can use it
//! the same way:
//!
//! ```no_run
//! let report = kiln::Builder::new()
//!     .src("assets")
//!     .out("static")
//!     .public_url("/static/")
//!     .build()
//!     .map_err(|e| e.to_string())?;
//! println!("{} files", report.files);
//! # Ok::<(), String>(())
//! ```

use std::path::{Path, PathBuf};

#[cfg(feature = "cargo")]
pub mod cargo;
#[cfg(feature = "watch")]
pub mod watch;

pub use kiln_core;
pub use kiln_core::config::{
    CssConfig, DeployConfig, HeaderRule, ImageFormat, ImagesConfig, ImagesOverride, ManifestConfig,
    Targets,
};
pub use kiln_core::{
    BuildError, BuildReport, Config, ConfigError, Diagnostic, ManifestFormat, Progress, Severity,
};

/// Configures and runs builds. Cheap to clone; holds only the [`Config`].
#[derive(Debug, Clone, Default)]
pub struct Builder {
    config: Config,
}

impl Builder {
    /// A builder with the defaults (`assets/` -> `static/`, public URL `/static/`).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder for `config` as is.
    pub fn from_config(config: Config) -> Self {
        Builder { config }
    }

    /// A builder reading `kiln.toml` (or any config file) at `path`.
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Ok(Builder {
            config: Config::load(path.as_ref())?,
        })
    }

    /// The source folder.
    pub fn src(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.src = dir.into();
        self
    }

    /// The output folder.
    pub fn out(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.out = dir.into();
        self
    }

    /// The URL the output folder is served under.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.config.public_url = url.into();
        self
    }

    /// Which manifests to write.
    pub fn manifests(mut self, formats: impl IntoIterator<Item = ManifestFormat>) -> Self {
        self.config.manifest.formats = formats.into_iter().collect();
        self
    }

    /// Minify (default) or only fingerprint and rewrite.
    pub fn minify(mut self, minify: bool) -> Self {
        self.config.minify = minify;
        self
    }

    /// Worker threads (default: one per core).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.config.jobs = Some(jobs);
        self
    }

    /// The configuration, to read or change any other setting.
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Builds, then rebuilds on every change of the source folder (and of the config file, which
    /// is reloaded) until `stop` is set, reporting each build to `on_event`. See [`watch`].
    #[cfg(feature = "watch")]
    pub fn watch(
        &self,
        config: Option<watch::ConfigSource<'_>>,
        stop: &std::sync::atomic::AtomicBool,
        on_event: impl FnMut(watch::WatchEvent<'_>),
    ) -> Result<(), watch::WatchError> {
        watch::watch(self, config, stop, on_event)
    }

    /// Runs a build.
    pub fn build(&self) -> Result<BuildReport, BuildError> {
        self.build_with_progress(&())
    }

    /// Runs a build, reporting transform progress to `progress`.
    pub fn build_with_progress(&self, progress: &dyn Progress) -> Result<BuildReport, BuildError> {
        #[cfg(feature = "css")]
        let css = kiln_css::CssTransformer::new(&self.config).map_err(|e| {
            BuildError::Config(ConfigError::Invalid {
                key: "targets".to_owned(),
                message: e.to_string(),
            })
        })?;
        #[cfg(feature = "js")]
        let js = kiln_js::JsTransformer::new(&self.config).map_err(|e| {
            BuildError::Config(ConfigError::Invalid {
                key: "targets".to_owned(),
                message: e.to_string(),
            })
        })?;
        #[cfg(feature = "images")]
        let images = kiln_image::ImageTransformer::new(&self.config);
        #[allow(unused_mut)] // without the `images` feature nothing is pushed
        let mut transformers: Vec<&dyn kiln_core::Transformer> = vec![
            #[cfg(feature = "css")]
            &css,
            #[cfg(feature = "js")]
            &js,
        ];
        #[cfg(feature = "images")]
        if kiln_image::ImageTransformer::enabled(&self.config) {
            transformers.push(&images);
        }
        let remote = self.remote_cache();
        #[allow(unused_mut)] // without the `deploy` feature nothing is pushed
        let mut report =
            kiln_core::build_with_remote(&self.config, &transformers, progress, remote)?;
        #[cfg(not(feature = "deploy"))]
        if self.config.cache.enabled
            && let Some(remote) = &self.config.cache.remote
        {
            report.warnings.push(kiln_core::Diagnostic::new(
                kiln_core::Severity::Warning,
                "remote-cache",
                remote.clone(),
                "this kiln was built without the `deploy` feature, which the remote cache needs; \
                 building without it",
            ));
        }
        Ok(report)
    }

    /// The remote cache of `[cache] remote`, when there is one and the cache is on.
    fn remote_cache(&self) -> Option<std::sync::Arc<dyn kiln_core::cache::Remote>> {
        // Settings are checked before anything is opened (the build checks them again).
        if !self.config.cache.enabled || self.config.clone().validate().is_err() {
            return None;
        }
        #[cfg(feature = "deploy")]
        {
            kiln_deploy::remote_cache::RemoteCache::open(&self.config.cache)
                .map(|r| std::sync::Arc::new(r) as std::sync::Arc<dyn kiln_core::cache::Remote>)
        }
        #[cfg(not(feature = "deploy"))]
        None
    }
}
