//! `hofbench report DIR`: the statistics of DIR (see `stats`) as figures and one
//! self-contained HTML page.
//!
//! Writes DIR/stats/ (as `hofbench stats`), then DIR/report/: `plots/*.png` and `plots/*.svg`
//! (per model × approach: a scatter per dimension, a density figure and a heatmap; a model
//! comparison when DIR holds several models; round-trip BLEU per language and tier for
//! multilingual runs; the leaderboard, `leaderboard`), `summary.md` and `report.html` (the tables and
//! the SVGs inline: no scripts, styles or images from anywhere else, so it opens offline).

pub mod leaderboard;
pub mod plots;

use crate::dimension::Dimension;
use crate::files::write_atomic;
use crate::manifest::{self, Manifest, ResultRow};
use crate::stats::{self, Analysis, Level, Options};
use crate::{Error, Result};
use plots::{
    escape, BleuBar, BleuBars, Density, Figure, Heatmap, ModelBars, Scatter, ScatterPoint,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const REPORT_DIR: &str = "report";

/// A file-name-safe form of a model or approach name.
fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "x".to_string()
    } else {
        out
    }
}

/// A rendered figure: its title and file stem (under plots/), and its SVG text.
pub struct Rendered {
    pub title: String,
    pub stem: String,
    pub svg: String,
}

fn figure(fig: &impl Figure, dir: &Path, stem: String, title: String) -> Result<Rendered> {
    let svg = plots::render(fig, dir, &stem)?;
    Ok(Rendered { title, stem, svg })
}

/// The manifests of the runs under `dir`, one per results.jsonl that has one beside it (a
/// folder of imported or hand-made results may have none). An unreadable or corrupt manifest
/// is an error naming it.
pub fn run_manifests(dir: &Path) -> Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for results in stats::results_files(dir)? {
        let run_dir = results.parent().unwrap_or(Path::new(""));
        out.extend(manifest::read_if_present(run_dir)?);
    }
    Ok(out)
}

/// The low-BLEU threshold of `runs` (their settings.bleu_threshold), when those that record
/// one all agree on it.
pub fn bleu_threshold(runs: &[Manifest]) -> Option<f64> {
    let mut found: Vec<f64> = Vec::new();
    for t in runs.iter().filter_map(|m| m.settings.bleu_threshold) {
        if !found.contains(&t) {
            found.push(t);
        }
    }
    match found[..] {
        [t] => Some(t),
        _ => None,
    }
}

/// Mean round-trip BLEU per language and tier, one figure per model × approach with
/// translations.
fn bleu_figures(
    a: &Analysis,
    threshold: Option<f64>,
    plots_dir: &Path,
    out: &mut Vec<Rendered>,
) -> Result<()> {
    let mut keys: Vec<(&str, &str)> = a
        .translation_quality
        .iter()
        .map(|q| (q.model.as_str(), q.approach.as_str()))
        .collect();
    keys.dedup();
    for (model, approach) in keys {
        let bars = a
            .translation_quality
            .iter()
            .filter(|q| q.model == model && q.approach == approach)
            .map(|q| {
                let label = match (&q.country, &q.lang) {
                    (Some(c), Some(l)) => format!("{c} ({l})"),
                    _ => format!("{} tier", q.tier.map_or("every", |t| t.code())),
                };
                let note = if q.rows_with_bleu == 0 {
                    "no translation".to_string()
                } else {
                    format!("{}/{} below", q.low_bleu_rows, q.rows_with_bleu)
                };
                BleuBar {
                    label,
                    mean_bleu: q.mean_bleu,
                    note,
                    tier: q.country.as_ref().and(q.tier),
                }
            })
            .collect();
        let title = format!("{model} · {approach}: round-trip BLEU per language and tier");
        let fig = BleuBars {
            title: title.clone(),
            bars,
            threshold,
        };
        out.push(figure(
            &fig,
            plots_dir,
            format!("bleu_{}_{}", slug(model), slug(approach)),
            title,
        )?);
    }
    Ok(())
}

/// Draw every figure of an analysis into `plots_dir`; `bleu_threshold` is drawn on the
/// translation-quality figures when known.
pub fn figures(
    a: &Analysis,
    rows: &[ResultRow],
    bleu_threshold: Option<f64>,
    plots_dir: &Path,
) -> Result<Vec<Rendered>> {
    let mut out = Vec::new();
    for model in a.models() {
        let mut approaches: Vec<&str> = a.groups_of(model).iter().map(|g| g.0).collect();
        approaches.dedup();
        for approach in approaches {
            let dims: Vec<Dimension> = a
                .groups_of(model)
                .into_iter()
                .filter(|g| g.0 == approach)
                .map(|g| g.1)
                .collect();
            let base = format!("{}_{}", slug(model), slug(approach));
            let shares_of = |dim: Dimension| {
                a.shares.iter().filter(move |s| {
                    s.model == model && s.approach == approach && s.dimension == dim
                })
            };
            for &dim in &dims {
                let r = a
                    .correlation((model, approach, dim), None, Level::Country)
                    .and_then(|c| c.pearson);
                let r_text = r.map_or_else(
                    || "r undefined".to_string(),
                    |c| format!("r = {:+.2}{} (n = {})", c.r, stats::stars(c.p), c.n),
                );
                let title = format!("{model} · {approach} · {dim}: {r_text}");
                let scatter = Scatter {
                    title: title.clone(),
                    points: shares_of(dim)
                        .map(|s| ScatterPoint {
                            label: s.country.clone(),
                            score: s.hofstede_score,
                            share: s.share_high,
                            tier: s.tier,
                        })
                        .collect(),
                };
                out.push(figure(
                    &scatter,
                    plots_dir,
                    format!("scatter_{base}_{dim}"),
                    title,
                )?);
            }

            let panels = dims
                .iter()
                .map(|&dim| {
                    let side = |high: bool| -> Vec<f64> {
                        rows.iter()
                            .filter(|r| {
                                r.model == model
                                    && r.approach == approach
                                    && r.dimension == dim
                                    && r.high_side == high
                            })
                            .filter_map(|r| r.p_high)
                            .collect()
                    };
                    (dim.to_string(), side(true), side(false))
                })
                .collect();
            let title = format!("{model} · {approach}: density of p_high by the country's side");
            let density = Density {
                title: title.clone(),
                panels,
            };
            out.push(figure(
                &density,
                plots_dir,
                format!("density_{base}"),
                title,
            )?);

            let mut countries: Vec<&str> = Vec::new();
            for s in a
                .shares
                .iter()
                .filter(|s| s.model == model && s.approach == approach)
            {
                if !countries.contains(&s.country.as_str()) {
                    countries.push(&s.country);
                }
            }
            let values = countries
                .iter()
                .map(|c| {
                    dims.iter()
                        .map(|&dim| {
                            shares_of(dim)
                                .find(|s| s.country == *c)
                                .map(|s| s.share_high - s.expected_share())
                        })
                        .collect()
                })
                .collect();
            let title =
                format!("{model} · {approach}: high-side share − expected (1 high side, 0 low)");
            let heatmap = Heatmap {
                title: title.clone(),
                columns: dims.iter().map(|d| d.to_string()).collect(),
                rows: countries.iter().map(|c| c.to_string()).collect(),
                values,
            };
            out.push(figure(
                &heatmap,
                plots_dir,
                format!("heatmap_{base}"),
                title,
            )?);
        }
    }

    let models = a.models();
    if models.len() > 1 {
        let mut series = Vec::new();
        for model in &models {
            let mut approaches: Vec<&str> = a.groups_of(model).iter().map(|g| g.0).collect();
            approaches.dedup();
            for approach in approaches {
                let name = if approaches_of_all(a).len() > 1 {
                    format!("{model} ({approach})")
                } else {
                    model.to_string()
                };
                let values = Dimension::ALL
                    .iter()
                    .map(|&d| {
                        a.correlation((model, approach, d), None, Level::Country)
                            .and_then(|c| c.pearson)
                            .map(|c| c.r)
                    })
                    .collect();
                series.push((name, values));
            }
        }
        let title = "Country-level correlation with the Hofstede score, by model".to_string();
        let bars = ModelBars {
            title: title.clone(),
            dimensions: Dimension::ALL.iter().map(|d| d.to_string()).collect(),
            series,
        };
        out.push(figure(&bars, plots_dir, "models".to_string(), title)?);
        let title = "Leaderboard: country-level r (dot: r, line: 95% bootstrap interval; \
                     triangle: persona effect, shift-vs-score r)"
            .to_string();
        let board = leaderboard::Leaderboard {
            title: title.clone(),
            entries: leaderboard::entries(a),
        };
        out.push(figure(&board, plots_dir, "leaderboard".to_string(), title)?);
    }
    bleu_figures(a, bleu_threshold, plots_dir, &mut out)?;
    Ok(out)
}

fn approaches_of_all(a: &Analysis) -> Vec<&str> {
    let mut v: Vec<&str> = a.shares.iter().map(|s| s.approach.as_str()).collect();
    v.sort();
    v.dedup();
    v
}

/// Markdown as written by `stats::summary` (headings, paragraphs, pipe tables) → HTML.
fn markdown_to_html(md: &str) -> String {
    let mut html = String::new();
    let mut in_table = false;
    for line in md.lines() {
        let line = line.trim_end();
        if let Some(cells) = line.strip_prefix('|') {
            let cells: Vec<&str> = cells
                .trim_end_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            if cells.iter().all(|c| c.chars().all(|ch| ch == '-')) {
                continue; // the header separator
            }
            let tag = if in_table { "td" } else { "th" };
            if !in_table {
                html.push_str("<table>\n");
                in_table = true;
            }
            html.push_str("<tr>");
            for c in cells {
                write!(html, "<{tag}>{}</{tag}>", escape(c)).unwrap();
            }
            html.push_str("</tr>\n");
            continue;
        }
        if in_table {
            html.push_str("</table>\n");
            in_table = false;
        }
        if let Some(h) = line.strip_prefix("## ") {
            writeln!(html, "<h2>{}</h2>", escape(h)).unwrap();
        } else if let Some(quote) = line.strip_prefix("> ") {
            // The banners of `stats::position`: "> **Warning:** text".
            let text = match quote.strip_prefix("**Warning:** ") {
                Some(t) => format!("<strong>Warning:</strong> {}", escape(t)),
                None => escape(quote),
            };
            writeln!(html, "<p class=\"warning\">{text}</p>").unwrap();
        } else if !line.is_empty() {
            writeln!(html, "<p>{}</p>", escape(line)).unwrap();
        }
    }
    if in_table {
        html.push_str("</table>\n");
    }
    html
}

/// A CSV table as an HTML table, numbers shortened to 4 significant digits.
fn csv_to_html(text: &str) -> String {
    let mut html = String::from("<table>\n");
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.expect("our own CSV");
        let tag = if i == 0 { "th" } else { "td" };
        html.push_str("<tr>");
        for cell in rec.iter() {
            let shown = match cell.parse::<f64>() {
                Ok(v) if cell.contains('.') || cell.contains('e') => format!("{v:.4}"),
                _ => cell.to_string(),
            };
            write!(html, "<{tag}>{}</{tag}>", escape(&shown)).unwrap();
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    html
}

/// An SVG document as an inline element (no XML declaration).
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

pub fn html(a: &Analysis, source: &Path, figures: &[Rendered]) -> String {
    let mut h = String::new();
    h.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>hofbench report</title>\n<style>\n\
         body{font-family:'DejaVu Sans',Arial,sans-serif;margin:2em auto;max-width:1500px;color:#222}\n\
         table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:13px}\n\
         th,td{border:1px solid #bbb;padding:3px 7px;text-align:right}\n\
         th{background:#eee}td:first-child,td:nth-child(2){text-align:left}\n\
         figure{margin:1em 0}figcaption{font-weight:bold;margin-bottom:0.3em}\n\
         svg{max-width:100%;height:auto}\n\
         .warning{background:#fde8e8;border:1px solid #c0392b;padding:0.6em 0.9em}\n\
         </style>\n</head>\n<body>\n",
    );
    writeln!(
        h,
        "<h1>hofbench report</h1>\n<p>Results in <code>{}</code>; hofbench {}. Models: {}.</p>",
        escape(&source.display().to_string()),
        env!("CARGO_PKG_VERSION"),
        escape(&a.models().join(", "))
    )
    .unwrap();
    h.push_str(&markdown_to_html(&stats::summary(a)));
    if a.models().len() > 1 {
        h.push_str(&leaderboard::html_table(&leaderboard::entries(a)));
    }
    h.push_str("<h2>Figures</h2>\n");
    for f in figures {
        writeln!(
            h,
            "<figure id=\"{}\">\n<figcaption>{}</figcaption>\n{}\n</figure>",
            escape(&f.stem),
            escape(&f.title),
            inline_svg(&f.svg)
        )
        .unwrap();
    }
    h.push_str("<h2>Tables</h2>\n");
    for (name, text) in stats::tables(a) {
        writeln!(
            h,
            "<details><summary>{name}</summary>\n{}</details>",
            csv_to_html(&text)
        )
        .unwrap();
    }
    h.push_str("</body>\n</html>\n");
    h
}

/// Compute DIR/stats/ and write DIR/report/. Returns the path of report.html.
pub fn report(dir: &Path, options: Options) -> Result<PathBuf> {
    // Keyed as the tables are: a generate run of a model is its own "model" in the figures.
    let rows = stats::keyed_by_analysis_model(&stats::load(dir)?);
    let (analysis, md) = stats::run_with(dir, options)?;
    let out = dir.join(REPORT_DIR);
    let plots_dir = out.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(|e| Error::io(&plots_dir, e))?;
    let threshold = bleu_threshold(&run_manifests(dir)?);
    let figs = figures(&analysis, &rows, threshold, &plots_dir)?;
    write_atomic(&out.join("summary.md"), md.as_bytes())?;
    let path = out.join("report.html");
    write_atomic(&path, html(&analysis, dir, &figs).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = include_str!("../../tests/fixtures/manifest/merged.json");

    /// Two run folders under `root`, each with a (here empty) results.jsonl.
    fn runs(root: &Path) -> [PathBuf; 2] {
        let dirs = [root.join("a"), root.join("b")];
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join(manifest::RESULTS_FILE), "").unwrap();
        }
        dirs
    }

    #[test]
    fn run_manifests_reads_those_present_and_reports_a_corrupt_one() {
        let root = tempfile::tempdir().unwrap();
        let [a, b] = runs(root.path());
        // A folder of imported results has no manifest: not an error.
        assert!(run_manifests(root.path()).unwrap().is_empty());
        std::fs::write(a.join(manifest::MANIFEST_FILE), MANIFEST).unwrap();
        let mut with_bleu: Manifest = serde_json::from_str(MANIFEST).unwrap();
        with_bleu.settings.bleu_threshold = Some(0.3);
        manifest::write(&b, &with_bleu).unwrap();
        let found = run_manifests(root.path()).unwrap();
        assert_eq!(found.len(), 2);
        // Only b records a threshold; a run without one does not disagree with it.
        assert_eq!(bleu_threshold(&found), Some(0.3));
        with_bleu.settings.bleu_threshold = Some(0.2);
        assert_eq!(bleu_threshold(&[found[1].clone(), with_bleu]), None);
        // A corrupt manifest is an error naming it, not a run silently left out.
        std::fs::write(a.join(manifest::MANIFEST_FILE), "{\"tool\": ").unwrap();
        let err = run_manifests(root.path()).err().unwrap().to_string();
        assert!(err.contains("a/manifest.json"), "{err}");
    }
}
