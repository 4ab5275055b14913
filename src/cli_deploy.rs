//! `kiln deploy`: runs [`kiln_deploy::deploy`] and prints the plan, the result or the error
//! (the flags are parsed with the others in main.rs).

use std::io::IsTerminal;
use std::process::ExitCode;

use kiln_deploy::{DeployError, Options, Outcome, VerifyOptions, VerifyReport};

use crate::{Bar, human};

/// Runs a deploy with `config`, printing as asked. Exit status: 0 deployed (or planned), 1 the
/// deploy failed or verifying it found a mismatch, 2 a configuration problem.
pub fn run(config: &kiln::Config, options: Options, json: bool, quiet: bool) -> ExitCode {
    let show_bar = !json && !quiet && std::io::stderr().is_terminal();
    let bar = Bar::new(show_bar, "uploading");
    let dry_run = options.dry_run;
    let result = kiln_deploy::deploy(config, options, &bar);
    bar.clear();
    match result {
        Ok(outcome) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&outcome).expect("outcome serialises")
                );
            } else if !quiet {
                if dry_run {
                    for line in plan_lines(&outcome) {
                        println!("{line}");
                    }
                }
                eprintln!("{}", summary(&outcome));
            }
            match &outcome.verify {
                Some(report) => {
                    if !json {
                        print_report(report, quiet);
                    }
                    verdict(report)
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(e) => error(&e, json),
    }
}

/// Runs `kiln verify`. Exit status: 0 all good, 1 a mismatch (or no answer), 2 configuration.
pub fn verify(config: &kiln::Config, options: &VerifyOptions, json: bool) -> ExitCode {
    match kiln_deploy::verify(config, options) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serialises")
                );
            } else {
                print_report(&report, false);
            }
            verdict(&report)
        }
        Err(e) => error(&e, json),
    }
}

fn error(e: &DeployError, json: bool) -> ExitCode {
    if json {
        let error = serde_json::json!({ "error": e.redacted() });
        println!("{error}");
    }
    eprintln!("kiln: error: {}", e.redacted());
    ExitCode::from(if e.is_config() { 2 } else { 1 })
}

fn verdict(report: &VerifyReport) -> ExitCode {
    if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// One line per problem (`path: url: detail`), then the count.
fn print_report(report: &VerifyReport, quiet: bool) {
    for p in &report.problems {
        eprintln!("kiln: verify: {}: {}", p.url, p.detail);
    }
    if report.problems.is_empty() {
        if !quiet {
            eprintln!(
                "kiln: verified {} of {} files at {} in {:.2}s: all served as built",
                report.checked,
                report.total,
                report.public_url,
                report.elapsed.as_secs_f64()
            );
        }
    } else {
        eprintln!(
            "kiln: error: {} problem(s) in {} files checked at {}",
            report.problems.len(),
            report.checked,
            report.public_url
        );
    }
}

/// One line per planned action: `upload css/app.3f54ce26f927.css (new, 1.2 KiB)`.
fn plan_lines(outcome: &Outcome) -> Vec<String> {
    let plan = &outcome.plan;
    plan.uploads
        .iter()
        .map(|u| {
            format!(
                "upload {} ({}, {})",
                u.path,
                u.reason.describe(),
                human(u.size)
            )
        })
        .chain(
            plan.deletes
                .iter()
                .map(|d| format!("delete {} ({})", d.path, d.reason.describe())),
        )
        .chain(plan.cors.iter().map(|origins| {
            if origins.is_empty() {
                "cors: remove the bucket's CORS rules".to_owned()
            } else {
                format!("cors: allow GET/HEAD from {}", origins.join(", "))
            }
        }))
        .chain(outcome.purge.iter().flat_map(|p| {
            let how = if p.wildcard {
                " (one wildcard purge: more than max_paths)".to_owned()
            } else {
                String::new()
            };
            p.paths
                .iter()
                .map(move |u| format!("purge {u} ({}{how})", p.provider))
        }))
        .collect()
}

fn summary(outcome: &Outcome) -> String {
    let plan = &outcome.plan;
    if outcome.dry_run {
        let bytes: u64 = plan.uploads.iter().map(|u| u.size).sum();
        return format!(
            "kiln: dry run for {}: would upload {} files ({}), delete {}, leave {} unchanged; nothing was changed",
            outcome.target,
            plan.uploads.len(),
            human(bytes),
            plan.deletes.len(),
            plan.unchanged
        );
    }
    if outcome.uploaded == 0 && outcome.deleted == 0 && plan.uploads.is_empty() {
        return format!(
            "kiln: {} is up to date: {} files, release {}",
            outcome.target, plan.unchanged, plan.release
        );
    }
    let purged = match &outcome.purge {
        Some(p) if p.wildcard => format!(", purged {} (wildcard)", p.provider),
        Some(p) => format!(", purged {} URLs ({})", p.paths.len(), p.provider),
        None => String::new(),
    };
    format!(
        "kiln: deployed release {} to {} in {:.2}s: {} uploaded ({}), {} deleted, {} unchanged{purged}",
        plan.release,
        outcome.target,
        outcome.elapsed.as_secs_f64(),
        outcome.uploaded,
        human(outcome.uploaded_bytes),
        outcome.deleted,
        plan.unchanged
    )
}
