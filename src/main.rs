use clap::Parser;
use hofbench::cli::{Cli, Command};
use hofbench::{
    fetch, import, merge, prompts::PromptSet, report, run, stats, translate, verify, Result,
};
use std::io::Write;

fn main() {
    let cli = Cli::parse();
    if let Err(e) = dispatch(&cli) {
        eprintln!("error: {}", e.report());
        std::process::exit(1);
    }
}

fn dispatch(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Run(args) => run::run(args, cli.quiet),
        Command::Merge(args) => merge::merge_command(args, cli.quiet),
        Command::Compare(args) => {
            let md = hofbench::compare::compare_command(args)?;
            if !cli.quiet {
                println!("{md}");
                eprintln!("comparison in {}", args.out.display());
            }
            Ok(())
        }
        Command::Verify(args) => verify::verify_command(args, cli.quiet),
        Command::BenchPrefill(args) => hofbench::prefill_bench::bench_prefill(args, cli.quiet),
        Command::Translate(args) => translate::pipeline::translate_command(args, cli.quiet),
        Command::ImportTranslations(args) => translate::import::import_command(args, cli.quiet),
        Command::Stats { dir, stats } => {
            let (_, summary) = stats::run_with(dir, stats.options())?;
            if !cli.quiet {
                println!("{summary}");
            }
            Ok(())
        }
        Command::Report { dir, stats } => {
            let html = report::report(dir, stats.options())?;
            println!("{}", html.display());
            Ok(())
        }
        Command::ImportResults { files, model, out } => {
            let (rows, inconclusive) = import::import(files, model, out)?;
            if !cli.quiet {
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
            let path = fetch::fetch(&card, cli.quiet)?;
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
            let dim = dimension.as_deref().map(str::parse).transpose()?;
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
