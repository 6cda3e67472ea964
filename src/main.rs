//! The `hofbench` binary: parses the command line once into a typed `config::Command`, runs
//! it, and prints an error with its causes.

use hofbench::config::Command;
use hofbench::{
    fetch, import, merge, prompts::PromptSet, report, run, stats, translate, verify, Result,
};
use std::io::Write;

fn main() {
    hofbench::engine::allocator::keep_freed_memory();
    let (quiet, command) = hofbench::cli::parse();
    if let Err(e) = command.and_then(|c| dispatch(&c, quiet)) {
        eprintln!("error: {}", e.report());
        std::process::exit(1);
    }
}

fn dispatch(command: &Command, quiet: bool) -> Result<()> {
    match command {
        Command::Run(config) => run::run(config, quiet),
        Command::Merge(config) => merge::merge_command(config, quiet),
        Command::Compare(config) => {
            let md = hofbench::compare::compare_command(config)?;
            if !quiet {
                println!("{md}");
                eprintln!("comparison in {}", config.out.display());
            }
            Ok(())
        }
        Command::Verify(config) => verify::verify_command(config, quiet),
        Command::BenchPrefill(config) => hofbench::prefill_bench::bench_prefill(config, quiet),
        Command::Translate(config) => translate::pipeline::translate_command(config, quiet),
        Command::ImportTranslations(config) => translate::import::import_command(config, quiet),
        Command::Stats { dir, options } => {
            let (_, summary) = stats::run_with(dir, *options)?;
            if !quiet {
                println!("{summary}");
            }
            Ok(())
        }
        Command::Report { dir, options } => {
            let html = report::report(dir, *options)?;
            println!("{}", html.display());
            Ok(())
        }
        Command::ImportResults { files, model, out } => {
            let (rows, inconclusive) = import::import(files, model, out)?;
            if !quiet {
                eprintln!(
                    "imported {rows} answers ({inconclusive} inconclusive) from {} file(s) into {}",
                    files.len(),
                    out.join(hofbench::results::RESULTS_FILE).display()
                );
            }
            Ok(())
        }
        Command::Fetch { model } => {
            let card = match model {
                Some(m) => fetch::find_card(m).ok_or_else(|| {
                    hofbench::Error::Usage(format!(
                        "no model card named {m:?}; see `hofbench models`"
                    ))
                })?,
                None => fetch::default_card(),
            };
            let path = fetch::fetch(&card, quiet)?;
            println!("{}", path.display());
            Ok(())
        }
        Command::Models => {
            for c in fetch::cards() {
                let here = match (c.available(), &c.gguf) {
                    (Some(p), None) => format!("in the HF cache: {}", p.display()),
                    (Some(_), Some(_)) => "cached".into(),
                    (None, Some(_)) => "not fetched (hofbench fetch)".into(),
                    (None, None) => "not in the HF cache".into(),
                };
                let source = match (&c.gguf, &c.hub_repo) {
                    (None, Some(repo)) => repo.as_str(),
                    _ => "GGUF",
                };
                let default = if c.default { " (default)" } else { "" };
                println!("{}{default}\t{}\t{source}\t{here}", c.name, c.description);
            }
            Ok(())
        }
        Command::Prompts { prompts, dimension } => {
            let set = PromptSet::from_option(prompts.as_deref())?;
            let dim = *dimension;
            let mut out = std::io::stdout().lock();
            for item in set
                .items
                .iter()
                .filter(|i| dim.is_none_or(|d| i.dimension == d))
            {
                let line = serde_json::json!({
                    "id": item.id,
                    "dimension": item.dimension,
                    "request": item.request,
                    "high_action": item.high_action,
                    "low_action": item.low_action,
                });
                if writeln!(out, "{line}").is_err() {
                    break; // stdout closed (e.g. piped into head)
                }
            }
            Ok(())
        }
    }
}
