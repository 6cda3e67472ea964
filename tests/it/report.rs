//! `hofbench report` and the CLI around the statistics: PNGs with real content, SVGs, an
//! offline report.html (rendered in headless Chromium when it is installed), statistics over
//! a folder of several runs, import-results → report, and translate → multilingual and
//! personas runs → the translation-quality and personas-vs-multilingual sections.

use crate::harness::{hofbench, ok, s};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A folder holding two runs: the stats fixture split by model.
fn two_runs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo("tests/fixtures/stats/results.jsonl")).unwrap();
    for model in ["synthetic", "imported"] {
        let run = dir.path().join(model);
        std::fs::create_dir(&run).unwrap();
        let tag = format!("\"model\": \"{model}\"");
        let lines: String = text
            .lines()
            .filter(|l| l.contains(&tag))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(run.join("results.jsonl"), lines).unwrap();
    }
    dir
}

/// (distinct colours, share of pixels that are not the white background)
fn png_content(path: &Path) -> (usize, f64) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    let colours: HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    let inked = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    (
        colours.len(),
        inked as f64 / (img.width() * img.height()) as f64,
    )
}

#[test]
fn report_writes_plots_and_an_offline_html_page() {
    let dir = two_runs();
    let out = hofbench(&["--quiet", "report", s(dir.path()), "--resamples", "200"]);
    ok(&out);
    let html_path = dir.path().join("report/report.html");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), s(&html_path));

    let plots = dir.path().join("report/plots");
    let mut stems = vec![
        "models".to_string(),
        "leaderboard".into(),
        "density_imported_personas".into(),
        "heatmap_imported_personas".into(),
        "scatter_imported_personas_mas".into(),
        "bleu_synthetic_multilingual".into(),
    ];
    for (approach, dims) in [
        ("personas", ["idv", "lto"]),
        ("multilingual", ["idv", "uai"]),
    ] {
        stems.push(format!("density_synthetic_{approach}"));
        stems.push(format!("heatmap_synthetic_{approach}"));
        for d in dims {
            stems.push(format!("scatter_synthetic_{approach}_{d}"));
        }
    }
    let html = std::fs::read_to_string(&html_path).unwrap();
    for stem in &stems {
        let png = plots.join(format!("{stem}.png"));
        let (colours, inked) = png_content(&png);
        // Anti-aliased text and coloured marks give hundreds of colours; a blank or
        // text-less figure gives a handful.
        assert!(colours > 50, "{stem}: {colours} colours");
        assert!((0.02..0.95).contains(&inked), "{stem}: {inked} inked");
        let svg = std::fs::read_to_string(plots.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("<text"), "{stem}");
        assert!(html.contains(&format!("<figure id=\"{stem}\">")), "{stem}");
    }
    // Two models → the comparison chart names both.
    assert!(std::fs::read_to_string(plots.join("models.svg"))
        .unwrap()
        .contains("imported (personas)"));

    // Self-contained: the figures inline, nothing fetched from anywhere.
    assert_eq!(html.matches("<svg").count(), stems.len());
    for needle in ["<script", "<img", "<link", "src=", "url(", "@import"] {
        assert!(!html.contains(needle), "report.html contains {needle}");
    }
    for table in [
        "correlations.csv",
        "classification.csv",
        "diagnostics.csv",
        "by_country.csv",
        "translation_quality.csv",
        "correlations_bleu_ok.csv",
    ] {
        assert!(html.contains(table), "{table}");
    }
    assert!(html.contains("<th>approach</th>"));
    // Several models: the leaderboard table, best mean r first.
    let board = &html[html.find("<h2>Leaderboard</h2>").expect("leaderboard")..];
    let (first, second) = (
        board.find("<td>1</td><td>").unwrap(),
        board.find("<td>2</td><td>").unwrap(),
    );
    assert!(first < second);
    let summary = std::fs::read_to_string(dir.path().join("report/summary.md")).unwrap();
    assert!(summary.contains("## imported") && summary.contains("## synthetic"));
    assert!(summary.contains("## Models compared"));
    assert!(
        summary.contains("| synthetic | multilingual | +0.70 (n=8) |"),
        "{summary}"
    );

    // Statistics over both runs, as if from one file.
    let corr = std::fs::read_to_string(dir.path().join("stats/correlations.csv")).unwrap();
    assert!(corr.contains("\nimported,personas,mas,all,country,14,"));
    assert!(corr.contains("\nsynthetic,multilingual,uai,low,country,2,NaN,"));

    screenshot(&html_path);
}

/// Open report.html in headless Chromium and check the screenshot shows a page. Chromium is
/// not part of the build machine (Debian package `chromium`); without it this part is skipped
/// and says so, except in CI (`CI` set), where tests/run.sh installs it: there a missing
/// chromium fails the test instead of passing it silently.
fn screenshot(html: &Path) {
    let Some(browser) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but no chromium is on PATH: report.html cannot be checked in a browser \
             (tests/run.sh installs Debian's chromium as root)"
        );
        eprintln!("skipped: no chromium on PATH, report.html not rendered in a browser");
        return;
    };
    let shot = html.with_file_name("screenshot.png");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1400,3000",
            &format!("--screenshot={}", s(&shot)),
            &format!("file://{}", s(html)),
        ])
        .output()
        .unwrap();
    assert!(
        shot.is_file(),
        "{browser} made no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (colours, inked) = png_content(&shot);
    assert!(
        colours > 50 && inked > 0.05,
        "{colours} colours, {inked} inked"
    );
}

#[test]
fn import_results_then_stats_and_report_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("paper");
    let out = hofbench(&[
        "import-results",
        s(&repo("tests/fixtures/import/personas_idv.csv")),
        s(&repo("tests/fixtures/import/multilingual_lto.csv")),
        "--model",
        "paper-model",
        "--out",
        s(&out_dir),
    ]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("imported 11 answers (2 inconclusive)"));
    ok(&hofbench(&["--quiet", "stats", s(&out_dir), "--seed", "3"]));
    let boot = std::fs::read_to_string(out_dir.join("stats/bootstrap.csv")).unwrap();
    assert!(
        boot.contains("paper-model,personas,idv,all,6,3,2000,"),
        "{boot}"
    );
    ok(&hofbench(&["--quiet", "report", s(&out_dir)]));
    assert!(out_dir
        .join("report/plots/scatter_paper-model_multilingual_lto.png")
        .is_file());

    // A broken file is named with its line, and nothing is written.
    let bad = dir.path().join("broken.csv");
    std::fs::write(
        &bad,
        "English_Prompt,Target_Nationality,Resource_Level,MAS_Score,Matching_Choice,\
         Expected_Masculine,Expected_Feminine\nq,Japan,High,95,Masculine,m,f\nq,Japan,High,95,Maybe,m,f\n",
    )
    .unwrap();
    let out = hofbench(&[
        "import-results",
        s(&bad),
        "--model",
        "m",
        "--out",
        s(&dir.path().join("never")),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.csv:3:") && err.contains("\"Maybe\""),
        "{err}"
    );
    assert!(!dir.path().join("never").exists());
}

#[test]
fn a_folder_of_runs_must_not_hold_the_same_rows_twice() {
    let dir = two_runs();
    let copy = dir.path().join("synthetic-again");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(
        dir.path().join("synthetic/results.jsonl"),
        copy.join("results.jsonl"),
    )
    .unwrap();
    let out = hofbench(&["--quiet", "stats", s(dir.path())]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("synthetic-again/results.jsonl") && err.contains("is also in"),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    let out = hofbench(&["--quiet", "stats", s(empty.path())]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no results.jsonl"));
}

/// The multilingual approach end to end into the report: the tiny random NLLB translates one
/// request into French and German, SmolLM2 answers it as multilingual and as personas runs of
/// three countries (one English), and stats/report over the folder of both runs show the
/// translation quality per language and tier and the two approaches side by side.
#[test]
fn translate_then_multilingual_and_personas_runs_report_translation_quality() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("p.jsonl");
    let text = std::fs::read_to_string(repo("prompts/requests/pdi.jsonl")).unwrap();
    std::fs::write(&prompts, text.lines().next().unwrap()).unwrap();
    let cache = dir.path().join("cache");
    let tiny = repo("tests/fixtures/nllb/tiny");
    ok(&hofbench(&[
        "--quiet",
        "translate",
        "--model",
        s(&tiny),
        "--languages",
        "fra_Latn,deu_Latn",
        "--beams",
        "1",
        "--max-length",
        "8",
        "--prompts",
        s(&prompts),
        "--out",
        s(&cache),
    ]));
    let runs = dir.path().join("runs");
    let countries = "France,Germany,United States";
    for approach in ["multilingual", "personas"] {
        ok(&hofbench(&[
            "--quiet",
            "run",
            "--approach",
            approach,
            "--countries",
            countries,
            "--translations",
            s(&cache),
            "--prompts",
            s(&prompts),
            "--out",
            s(&runs.join(approach)),
        ]));
    }
    let rows = hofbench::results::read(&runs.join("multilingual/results.jsonl"))
        .unwrap()
        .rows;
    assert_eq!(rows.len(), 3);
    ok(&hofbench(&[
        "--quiet",
        "report",
        s(&runs),
        "--resamples",
        "50",
    ]));

    // translation_quality.csv: one row per language × country (in the run's order, that of
    // prompts/countries.csv), then the tiers present and all.
    let quality = std::fs::read_to_string(runs.join("stats/translation_quality.csv")).unwrap();
    let mut lines = quality.lines();
    assert_eq!(
        lines.next().unwrap(),
        "model,approach,lang,country,tier,rows,rows_with_bleu,mean_bleu,low_bleu_rows,low_bleu_share"
    );
    let table: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    let keys: Vec<(&str, &str, &str)> = table
        .iter()
        .map(|r| (r[2].as_str(), r[3].as_str(), r[4].as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("deu_Latn", "Germany", "high"),
            ("fra_Latn", "France", "high"),
            ("eng_Latn", "United States", "high"),
            ("all", "all", "high"),
            ("all", "all", "all"),
        ]
    );
    assert!(table.iter().all(|r| r[1] == "multilingual"));
    for (row, lang) in table.iter().zip(["deu_Latn", "fra_Latn"]) {
        let r = rows
            .iter()
            .find(|r| r.lang.as_deref() == Some(lang))
            .unwrap();
        let bleu = r.translation_bleu.unwrap();
        assert_eq!(row[5..8], ["1".to_string(), "1".into(), bleu.to_string()]);
        assert_eq!(row[8], usize::from(bleu < 0.2).to_string(), "{row:?}");
        assert_eq!(r.low_bleu, bleu < 0.2);
    }
    let low = rows.iter().filter(|r| r.low_bleu).count();
    assert_eq!(table[4][5..7], ["3".to_string(), "2".into()]);
    assert_eq!(table[4][8], low.to_string());
    assert_eq!(table[2][7], "NaN"); // English: no translation, no BLEU

    // Same columns as correlations.csv; only the multilingual groups.
    let ok_corr = std::fs::read_to_string(runs.join("stats/correlations_bleu_ok.csv")).unwrap();
    let corr = std::fs::read_to_string(runs.join("stats/correlations.csv")).unwrap();
    assert_eq!(ok_corr.lines().next(), corr.lines().next());
    assert!(ok_corr
        .lines()
        .skip(1)
        .all(|l| l.contains(",multilingual,")));
    assert!(ok_corr.contains(&format!(
        "\nsmollm2-135m-instruct,multilingual,pdi,all,response,{},",
        3 - low
    )));

    let summary = std::fs::read_to_string(runs.join("report/summary.md")).unwrap();
    assert!(summary.contains("## Translation quality"), "{summary}");
    assert!(summary.contains("## Personas vs multilingual"), "{summary}");
    assert!(
        summary.contains(
            "| smollm2-135m-instruct | multilingual | fra_Latn | France | high | 1 | 1 |"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("| smollm2-135m-instruct | pdi |"),
        "{summary}"
    );
    // The cache's own corpus figures, read through the run's settings.translations.
    let cache_manifest: hofbench::translate::CacheManifest = serde_json::from_str(
        &std::fs::read_to_string(cache.join(hofbench::translate::MANIFEST_FILE)).unwrap(),
    )
    .unwrap();
    for lang in ["fra_Latn", "deu_Latn"] {
        let l = &cache_manifest.languages[lang];
        let line = format!(
            "| smollm2-135m-instruct | multilingual | {lang} | {} | {} | {:.3} | {:.3} |",
            s(&cache),
            l.rows,
            l.corpus_bleu.unwrap(),
            l.corpus_chrf.unwrap()
        );
        assert!(summary.contains(&line), "{line}\n{summary}");
    }
    let html = std::fs::read_to_string(runs.join("report/report.html")).unwrap();
    assert!(html.contains("<h2>Translation quality</h2>"));
    assert!(html.contains("<h2>Personas vs multilingual</h2>"));
    let stem = "bleu_smollm2-135m-instruct_multilingual";
    assert!(html.contains(&format!("<figure id=\"{stem}\">")));
    let (colours, inked) = png_content(&runs.join(format!("report/plots/{stem}.png")));
    assert!(
        colours > 50 && (0.02..0.95).contains(&inked),
        "{colours} {inked}"
    );
    let svg = std::fs::read_to_string(runs.join(format!("report/plots/{stem}.svg"))).unwrap();
    // The bars name each language; the runs' threshold is drawn.
    for label in [
        "France (fra_Latn)",
        "Germany (deu_Latn)",
        "high tier",
        "threshold 0.2",
    ] {
        assert!(svg.contains(label), "{label}");
    }
}

/// The persona_compare fixture's runs (a control run, its personas run, another model) and a
/// model that always picks the first option (most of its items flip with the option order).
fn runs_with_control_and_position() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["control", "personas", "other"] {
        let run = dir.path().join(name);
        std::fs::create_dir(&run).unwrap();
        std::fs::copy(
            repo(&format!(
                "tests/fixtures/persona_compare/{name}/results.jsonl"
            )),
            run.join("results.jsonl"),
        )
        .unwrap();
    }
    let text = std::fs::read_to_string(repo("tests/fixtures/persona_compare/other/results.jsonl"))
        .unwrap();
    let mut lines = String::new();
    for (k, line) in text.lines().enumerate() {
        let mut row: serde_json::Value = serde_json::from_str(line).unwrap();
        row["model"] = "positional".into();
        // Every fourth item keeps its answer in both orders; the rest say "A".
        let p = row["p_high"].as_f64().unwrap();
        let by = if k % 4 == 0 { [p, p] } else { [0.95, 0.1] };
        row["p_high_by_order"] = serde_json::json!(by);
        row["p_high"] = ((by[0] + by[1]) / 2.0).into();
        lines.push_str(&format!("{row}\n"));
    }
    let run = dir.path().join("positional");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("results.jsonl"), lines).unwrap();
    dir
}

#[test]
fn leaderboard_persona_effect_and_position_banner() {
    let dir = runs_with_control_and_position();
    ok(&hofbench(&[
        "--quiet",
        "report",
        s(dir.path()),
        "--resamples",
        "100",
    ]));
    let html = std::fs::read_to_string(dir.path().join("report/report.html")).unwrap();
    let board = &html[html.find("<h2>Leaderboard</h2>").expect("leaderboard")..];
    let board = &board[..board.find("</table>").unwrap()];
    // Three models (the control run is not one), each on one line.
    assert_eq!(board.matches("<tr><td>").count(), 3, "{board}");
    let line_of = |model: &str| {
        board
            .lines()
            .find(|l| l.contains(&format!("<td>{model}</td>")))
            .unwrap_or_else(|| panic!("{model} not in {board}"))
    };
    // The model with a control run shows its persona effect; the others do not have one.
    assert!(line_of("synthetic").contains("changed)"), "{board}");
    assert!(!line_of("other").contains("changed)"), "{board}");
    let (colours, inked) = png_content(&dir.path().join("report/plots/leaderboard.png"));
    assert!(
        colours > 50 && (0.02..0.95).contains(&inked),
        "{colours} {inked}"
    );
    let svg = std::fs::read_to_string(dir.path().join("report/plots/leaderboard.svg")).unwrap();
    for name in ["synthetic", "other", "positional", "idv", "mas"] {
        assert!(svg.contains(name), "{name}");
    }
    assert!(html.contains("<figure id=\"leaderboard\">"));

    // The positional model gets a banner, in summary.md and report.html; the others do not.
    let summary = std::fs::read_to_string(dir.path().join("stats/summary.md")).unwrap();
    let banners: Vec<&str> = summary
        .lines()
        .filter(|l| l.starts_with("> **Warning:**"))
        .collect();
    assert_eq!(banners.len(), 1, "{summary}");
    assert!(
        banners[0].contains("positional (personas)") && banners[0].contains("75%"),
        "{}",
        banners[0]
    );
    assert!(html.contains("<p class=\"warning\"><strong>Warning:</strong> positional"));
    // What is left when position is taken out: the agreeing quarter, counted and correlated.
    assert!(summary.contains("## Answers where both option orders agree"));
    assert!(
        summary.contains("| positional | personas | idv | 60 of 240 (25%) |"),
        "{summary}"
    );
    let agree =
        std::fs::read_to_string(dir.path().join("stats/correlations_orders_agree.csv")).unwrap();
    assert!(
        agree.contains("\npositional,personas,idv,all,response,60,"),
        "{agree}"
    );
    assert!(summary.contains("## Persona effect"));
    assert!(dir.path().join("stats/persona_effect.csv").is_file());
}
