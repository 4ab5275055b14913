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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Build(args) => build(args),
    }
}

fn load_config(args: &BuildArgs) -> Result<Config, ConfigError> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None if PathBuf::from(kiln_core_config_file()).is_file() => {
            Config::load(kiln_core_config_file().as_ref())?
        }
        None => Config::default(),
    };
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
    let progress = Bar::new(styled && !args.quiet);
    let result = Builder::from_config(config.clone()).build_with_progress(&progress);
    progress.clear();
    match result {
        Ok(report) => {
            for w in &report.warnings {
                eprint!("{}", render(w, styled));
            }
            if !args.quiet {
                eprintln!("{}", summary(&report, &config));
            }
            ExitCode::SUCCESS
        }
        Err(BuildError::Diagnostics(diagnostics)) => {
            for d in &diagnostics {
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

fn config_error_text(e: &ConfigError) -> String {
    match e {
        ConfigError::Parse { .. } => e.to_string(),
        _ => format!("kiln: error: {e}"),
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
    if report.removed > 0 {
        line.push_str(&format!(", {} old files removed", report.removed));
    }
    if !report.warnings.is_empty() {
        line.push_str(&format!(", {} warning(s)", report.warnings.len()));
    }
    // What each kind of work saved, so users see what they get.
    let mut saved = Vec::new();
    let (before, after) = report.transformed_bytes;
    if before > 0 {
        saved.push(format!("CSS/JS: {} -> {}", human(before), human(after)));
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

fn human(bytes: u64) -> String {
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

/// A progress bar on stderr that only appears when the transform stage runs longer than a moment.
struct Bar {
    bar: ProgressBar,
    enabled: bool,
    started: Instant,
}

impl Bar {
    const DELAY: Duration = Duration::from_millis(400);

    fn new(enabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} transforming {pos}/{len} files [{bar:30}] {elapsed}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Bar {
            bar,
            enabled,
            started: Instant::now(),
        }
    }

    fn clear(&self) {
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
}
