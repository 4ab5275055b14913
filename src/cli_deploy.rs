//! `kiln deploy`: runs [`kiln_deploy::deploy`] and prints the plan, the result or the error
//! (the flags are parsed with the others in main.rs).

use std::io::IsTerminal;
use std::process::ExitCode;

use kiln_deploy::{Options, Outcome};

use crate::{Bar, human};

/// Runs a deploy with `config`, printing as asked. Exit status: 0 deployed (or planned), 1 the
/// deploy failed, 2 a configuration problem.
pub fn run(config: &kiln::Config, dry_run: bool, json: bool, yes: bool, quiet: bool) -> ExitCode {
    let show_bar = !json && !quiet && std::io::stderr().is_terminal();
    let bar = Bar::new(show_bar, "uploading");
    let result = kiln_deploy::deploy(config, Options::new(dry_run, yes), &bar);
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
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                let error = serde_json::json!({ "error": e.redacted() });
                println!("{error}");
            }
            eprintln!("kiln: error: {}", e.redacted());
            ExitCode::from(if e.is_config() { 2 } else { 1 })
        }
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
    format!(
        "kiln: deployed release {} to {} in {:.2}s: {} uploaded ({}), {} deleted, {} unchanged",
        plan.release,
        outcome.target,
        outcome.elapsed.as_secs_f64(),
        outcome.uploaded,
        human(outcome.uploaded_bytes),
        outcome.deleted,
        plan.unchanged
    )
}
