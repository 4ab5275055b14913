//! The `kiln` command line: a thin layer over [`kiln::Builder`].
//!
//! Owns argument parsing, reading `kiln.toml`, printing diagnostics and the summary, the progress
//! bar, and exit statuses (0 ok, 1 build errors, 2 usage or configuration errors). Everything a
//! build does lives in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln::kiln_core::discover::DiscoverError;
use kiln::{BuildError, Builder, Config, ConfigError, ManifestFormat};

#[cfg(feature = "deploy")]
mod cli_deploy;

/// jemalloc: the minify task's CPU is 0.8x of glibc malloc's, and a cold build of the benchmark
/// corpus peaks lower (docs/benchmarks.md, "The allocator"). The library leaves the choice to the
/// program that links it.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Minify, fingerprint and manifest static assets for CDNs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the source folder into fingerprinted files and manifests.
    Build(BuildArgs),
    /// Build, then rebuild on every change (for development, beside runserver or flask run).
    Watch(BuildArgs),
    /// Manage the build cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Publish the last build to S3-compatible storage behind a CDN (see docs/deploy.md).
    #[cfg(feature = "deploy")]
    Deploy(DeployArgs),
    /// Check that the CDN at public_url serves the last build: status, bytes (SRI), headers,
    /// CORS. Exits 1 on any mismatch (see docs/deploy.md).
    #[cfg(feature = "deploy")]
    Verify(VerifyArgs),
}

#[derive(Args)]
struct VerifyArgs {
    /// Config file (default: kiln.toml in the current directory, if present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    scope: VerifyScope,
}

#[derive(Args)]
struct VerifyScope {
    /// Check every file, not only manifests, unhashed files, what changed and a sample.
    #[arg(long)]
    all: bool,
    /// How many fingerprinted files to sample besides those always checked.
    #[arg(long, value_name = "N", default_value_t = 20)]
    sample: usize,
}

#[derive(Args)]
struct DeployArgs {
    /// Config file (default: kiln.toml in the current directory, if present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print every planned upload and deletion with its reason; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the plan and its result as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Allow deleting more than `[deploy] max_deletes` objects.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print only errors, no summary.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// After deploying (and purging), check what the CDN serves, as `kiln verify` does.
    #[arg(long)]
    verify: bool,
    #[command(flatten)]
    scope: VerifyScope,
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Delete every entry of the build cache.
    Clean {
        /// Config file (default: kiln.toml in the current directory, if present).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Args)]
struct BuildArgs {
    /// Config file (default: kiln.toml in the current directory, if present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Source folder (overrides `src`).
    #[arg(long, value_name = "DIR")]
    src: Option<PathBuf>,
    /// Output folder (overrides `out`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// URL the output is served under, e.g. /static/ or https://cdn.example.com/ (overrides `public_url`).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Manifests to write, comma-separated from kiln,django,flask (overrides `[manifest] formats`).
    #[arg(long, value_name = "LIST")]
    manifest: Option<String>,
    /// Fingerprint and rewrite references without minifying.
    #[arg(long)]
    no_minify: bool,
    /// Worker threads (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<usize>,
    /// Print only errors and warnings, no summary.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// List every warning (without it, a file's many dropped CSS hacks are one counted line) and
    /// the time each stage took.
    #[arg(long, short = 'v')]
    verbose: bool,
    /// Neither read nor write the build cache.
    #[arg(long)]
    no_cache: bool,
    /// Shared cache behind the local one: s3://bucket/prefix or http(s)://host/path (overrides
    /// `[cache] remote`).
    #[arg(long, value_name = "URL", env = "KILN_REMOTE_CACHE")]
    remote_cache: Option<String>,
    /// Read the remote cache, never write it (for untrusted jobs such as pull requests).
    #[arg(long, env = "KILN_REMOTE_CACHE_READ_ONLY", value_parser = clap::builder::BoolishValueParser::new())]
    remote_read_only: bool,
    /// Leave the remote cache alone for this build.
    #[arg(long)]
    no_remote_cache: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Build(args) => build(args),
        Command::Watch(args) => watch(args),
        #[cfg(feature = "deploy")]
        Command::Deploy(args) => {
            let config = match checked_config(args.config.as_ref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let mut options = kiln_deploy::Options::new(args.dry_run, args.yes);
            if args.verify {
                options = options.with_verify(kiln_deploy::VerifyOptions::new(
                    args.scope.all,
                    args.scope.sample,
                ));
            }
            cli_deploy::run(&config, options, args.json, args.quiet)
        }
        #[cfg(feature = "deploy")]
        Command::Verify(args) => {
            let config = match checked_config(args.config.as_ref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let options = kiln_deploy::VerifyOptions::new(args.scope.all, args.scope.sample);
            cli_deploy::verify(&config, &options, args.json)
        }
        Command::Cache(CacheCommand::Clean { config }) => {
            let config = match config_file(config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{}", config_error_text(&e));
                    return ExitCode::from(2);
                }
            };
            match kiln::kiln_core::cache::Cache::clean(&config.cache.dir) {
                Ok(()) => {
                    eprintln!("kiln: cache {} cleaned", config.cache.dir.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("kiln: error: {}: {e}", config.cache.dir.display());
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// The config from `--config`, or ./kiln.toml if present, or the defaults.
/// The validated config, or the exit status after printing why not (2).
#[cfg(feature = "deploy")]
fn checked_config(path: Option<&PathBuf>) -> Result<Config, ExitCode> {
    config_file(path)
        .and_then(|mut c| {
            c.validate()?;
            Ok(c)
        })
        .map_err(|e| {
            eprintln!("{}", config_error_text(&e));
            ExitCode::from(2)
        })
}

fn config_file(path: Option<&PathBuf>) -> Result<Config, ConfigError> {
    match path {
        Some(path) => Config::load(path),
        None if PathBuf::from(kiln_core_config_file()).is_file() => {
            Config::load(kiln_core_config_file().as_ref())
        }
        None => Ok(Config::default()),
    }
}

fn load_config(args: &BuildArgs) -> Result<Config, ConfigError> {
    let mut config = config_file(args.config.as_ref())?;
    if let Some(src) = &args.src {
        config.src = src.clone();
    }
    if let Some(out) = &args.out {
        config.out = out.clone();
    }
    if let Some(url) = &args.public_url {
        config.public_url = url.clone();
    }
    if let Some(list) = &args.manifest {
        config.manifest.formats = ManifestFormat::parse_list(list)?;
    }
    if args.no_minify {
        config.minify = false;
    }
    if let Some(jobs) = args.jobs {
        config.jobs = Some(jobs);
    }
    if args.no_cache {
        config.cache.enabled = false;
    }
    if let Some(url) = &args.remote_cache {
        config.cache.remote = Some(url.clone()).filter(|u| !u.is_empty());
    }
    if args.remote_read_only {
        config.cache.remote_read_only = true;
    }
    if args.no_remote_cache {
        config.cache.remote = None;
    }
    config.validate()?;
    Ok(config)
}

fn kiln_core_config_file() -> &'static str {
    kiln::kiln_core::config::CONFIG_FILE
}

fn build(args: BuildArgs) -> ExitCode {
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", config_error_text(&e));
            return ExitCode::from(2);
        }
    };
    let styled = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let progress = Bar::new(styled && !args.quiet, "transforming");
    let result = Builder::from_config(config.clone()).build_with_progress(&progress);
    progress.clear();
    match result {
        Ok(report) => {
            for w in &shown(&report.warnings, args.verbose) {
                eprint!("{}", render(w, styled));
            }
            if !args.quiet {
                eprintln!("{}", summary(&report, &config));
                if args.verbose {
                    eprintln!("{}", stage_times(&report));
                }
            }
            ExitCode::SUCCESS
        }
        Err(BuildError::Diagnostics(diagnostics)) => {
            for d in &shown(&diagnostics, args.verbose) {
                eprint!("{}", render(d, styled));
            }
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            eprintln!(
                "kiln: build failed with {errors} error{}; {} left unchanged",
                if errors == 1 { "" } else { "s" },
                config.out.display()
            );
            ExitCode::from(1)
        }
        Err(BuildError::Config(e)) => {
            eprintln!("{}", config_error_text(&e));
            ExitCode::from(2)
        }
        Err(
            e @ BuildError::Discover(DiscoverError::MissingRoot(_) | DiscoverError::SameFolder(_)),
        ) => {
            eprintln!("kiln: error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("kiln: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn watch(args: BuildArgs) -> ExitCode {
    use kiln::watch::WatchEvent;
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", config_error_text(&e));
            return ExitCode::from(2);
        }
    };
    let config_file = args.config.clone().or_else(|| {
        let default = PathBuf::from(kiln_core_config_file());
        default.is_file().then_some(default)
    });
    // A changed kiln.toml is read again with the same flags applied on top.
    let load = || load_config(&args);
    let source = config_file
        .as_deref()
        .map(|file| kiln::watch::ConfigSource { file, load: &load });
    let styled = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let out = config.out.clone();
    let verbose = args.verbose;
    let result = Builder::from_config(config.clone()).watch(source, &stop, |event| match event {
        WatchEvent::Built {
            report,
            changed,
            elapsed,
        } => {
            for w in &shown(&report.warnings, verbose) {
                eprint!("{}", render(w, styled));
            }
            if changed.is_empty() {
                eprintln!("{}", summary(report, &config));
                eprintln!(
                    "kiln: watching {} for changes (Ctrl-C to stop)",
                    config.src.display()
                );
            } else {
                eprintln!(
                    "kiln: rebuilt in {} ms after {}: {} files written",
                    elapsed.as_millis(),
                    describe(changed),
                    report.written
                );
            }
        }
        WatchEvent::Failed { error, changed } => {
            match error {
                BuildError::Diagnostics(diagnostics) => {
                    for d in &shown(diagnostics, verbose) {
                        eprint!("{}", render(d, styled));
                    }
                }
                BuildError::Config(e) => eprintln!("{}", config_error_text(e)),
                e => eprintln!("kiln: error: {e}"),
            }
            eprintln!(
                "kiln: build failed after {}; {} keeps the last good build",
                describe(changed),
                out.display()
            );
        }
        _ => {}
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kiln: error: {e}");
            ExitCode::from(1)
        }
    }
}

/// `app.css changed` / `3 files changed`.
fn describe(changed: &[PathBuf]) -> String {
    match changed {
        [] => "start".to_owned(),
        [one] => format!(
            "{} changed",
            one.file_name().unwrap_or_default().to_string_lossy()
        ),
        many => format!("{} files changed", many.len()),
    }
}

fn config_error_text(e: &ConfigError) -> String {
    match e {
        ConfigError::Parse { .. } => e.to_string(),
        _ => format!("kiln: error: {e}"),
    }
}

/// The diagnostics to print: all of them with `--verbose`, else with each file's CSS hacks folded.
fn shown(diagnostics: &[kiln::Diagnostic], verbose: bool) -> Vec<kiln::Diagnostic> {
    if verbose {
        diagnostics.to_vec()
    } else {
        kiln::kiln_core::diagnostic::summarise(diagnostics)
    }
}

fn render(d: &kiln::Diagnostic, styled: bool) -> String {
    if styled {
        d.render_with(&kiln_core_renderer_styled())
    } else {
        d.render()
    }
}

fn kiln_core_renderer_styled() -> kiln::kiln_core::diagnostic::Renderer {
    kiln::kiln_core::diagnostic::Renderer::styled()
}

fn summary(report: &kiln::BuildReport, config: &Config) -> String {
    let mut line = format!(
        "kiln: {} files, {} -> {}, {} written to {} in {:.2}s",
        report.files,
        human(report.bytes_in),
        human(report.bytes_out),
        report.written,
        config.out.display(),
        report.elapsed.as_secs_f64()
    );
    if report.up_to_date {
        line.push_str(", up to date");
    }
    if report.removed > 0 {
        line.push_str(&format!(", {} old files removed", report.removed));
    }
    if !report.warnings.is_empty() {
        line.push_str(&format!(", {} warning(s)", report.warnings.len()));
    }
    let cache = report.cache;
    if cache.hits + cache.misses > 0 || report.remote.is_some() {
        line.push_str(&format!(
            " (cache: {} hits, {} misses",
            cache.hits, cache.misses
        ));
        if let Some(r) = &report.remote {
            line.push_str(&format!(
                ", {} transforms computed; remote: {} hits, {} misses",
                cache.transform_misses, r.hits, r.misses
            ));
            if r.rejected > 0 {
                line.push_str(&format!(", {} rejected", r.rejected));
            }
            if r.skipped > 0 {
                line.push_str(&format!(", {} skipped", r.skipped));
            }
            line.push_str(&format!(
                ", {} down, {} up in {} uploads",
                human(r.bytes_down),
                human(r.bytes_up),
                r.uploads
            ));
        }
        line.push(')');
    }
    // What each kind of work saved, so users see what they get.
    let mut saved = Vec::new();
    let (before, after) = report.transformed_bytes;
    if before > 0 {
        saved.push(format!("CSS/JS: {} -> {}", human(before), human(after)));
    }
    let (before, after) = report.image_bytes;
    if before > 0 {
        saved.push(format!("images: {} -> {}", human(before), human(after)));
    }
    let (count, bytes) = report.variants;
    if count > 0 {
        saved.push(format!("image variants: {count} files, {}", human(bytes)));
    }
    let c = &report.compressed;
    if c.files > 0 {
        saved.push(format!(
            "precompressed: {} files, {} -> {} as .br",
            c.files,
            human(c.original_bytes),
            human(c.compressed_bytes)
        ));
    }
    if !saved.is_empty() {
        line.push_str("\n  ");
        line.push_str(&saved.join("; "));
    }
    line
}

/// `  stages: discover 0.02s, transform 0.41s, ...`: where a build's time went (`--verbose`).
fn stage_times(report: &kiln::BuildReport) -> String {
    let stages: Vec<String> = (report.timings.iter())
        .map(|(name, d)| format!("{name} {:.3}s", d.as_secs_f64()))
        .collect();
    format!("  stages: {}", stages.join(", "))
}

pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A progress bar on stderr that only appears when a stage runs longer than a moment.
pub(crate) struct Bar {
    bar: ProgressBar,
    enabled: bool,
    started: Instant,
}

impl Bar {
    const DELAY: Duration = Duration::from_millis(400);

    /// A bar for `verb` (`transforming`, `uploading`), drawn only if `enabled`.
    pub(crate) fn new(enabled: bool, verb: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {verb} {{pos}}/{{len}} files [{{bar:30}}] {{elapsed}}"
            ))
            .expect("valid template")
            .progress_chars("=> "),
        );
        Bar {
            bar,
            enabled,
            started: Instant::now(),
        }
    }

    pub(crate) fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

impl kiln::Progress for Bar {
    fn start(&self, total: usize) {
        self.bar.set_length(total as u64);
    }

    fn advance(&self) {
        self.bar.inc(1);
        if self.enabled && self.bar.is_hidden() && self.started.elapsed() > Self::DELAY {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn waiting(&self, message: &str) {
        // Printed even with --quiet: a build that stands still must say why.
        self.bar.suspend(|| eprintln!("kiln: {message}"));
    }
}
