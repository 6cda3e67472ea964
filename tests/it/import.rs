//! `hofbench import-results` on hand-made CSVs in the paper's two released formats
//! (tests/fixtures/import/): BOM, index column, CRLF, quoted multi-line fields, doubled and
//! curly quotes, a trailing empty stray column, non-Latin scripts, Inconclusive answers, an
//! unreliable Tested_Value/Personas_or_Multilingual; and bad input reported with file and line.

use hofbench::import;
use hofbench::results::{self, ResultRow};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn imported() -> (tempfile::TempDir, Vec<ResultRow>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("paper");
    let files = [fixture("personas_idv.csv"), fixture("multilingual_lto.csv")];
    let (n, inconclusive) = import::import(&files, "paper-model", &out).unwrap();
    assert_eq!((n, inconclusive), (11, 2));
    let rows = results::read(&out.join("results.jsonl")).unwrap().rows;
    (dir, rows)
}

fn row<'a>(rows: &'a [ResultRow], country: &str) -> &'a ResultRow {
    rows.iter().find(|r| r.country == country).unwrap()
}

#[test]
fn both_variants_become_result_rows() {
    let (_dir, rows) = imported();
    for r in &rows {
        assert_eq!(r.model, "paper-model");
        assert_eq!(r.mode, "imported");
        assert!(r.p_high_by_order.is_none() && r.label_mass.is_none());
    }
    // Personas file: dimension from Expected_Individualistic/Expected_Collectivist, whatever
    // Tested_Value ("Long Term Orientation") and Personas_or_Multilingual say.
    let us = row(&rows, "United States");
    assert_eq!(
        (us.approach.as_str(), us.dimension.code(), us.p_high),
        ("personas", "idv", Some(1.0))
    );
    assert_eq!(us.prompt_id, "personas_idv.csv:2");
    assert_eq!(us.tier.code(), "high");
    assert_eq!((us.hofstede_score, us.high_side), (60.0, true));
    let text = us.response.as_deref().unwrap();
    assert!(
        text.starts_with("Take the job.\nYour career") && text.contains("\"follow your dreams\""),
        "{text:?}"
    );
    // The record after a two-line field starts two lines further down.
    assert_eq!(row(&rows, "Japan").prompt_id, "personas_idv.csv:4");
    let japan = rows
        .iter()
        .find(|r| r.country == "Japan" && r.approach == "personas")
        .unwrap();
    assert_eq!(japan.p_high, Some(0.0));
    assert!(japan
        .response
        .as_deref()
        .unwrap()
        .contains("“join the shop”"));
    let indonesia = row(&rows, "Indonesia");
    assert_eq!(indonesia.p_high, None);
    assert_eq!(indonesia.response.as_deref(), Some(""));
    assert_eq!(row(&rows, "Albania").p_high, Some(0.0)); // " collectivist "
                                                         // "The Netherlands" is our "Netherlands"; curly-quoted choice; trailing empty column.
    let nl = row(&rows, "Netherlands");
    assert_eq!((nl.p_high, nl.hofstede_score), (Some(1.0), 100.0));
    // A country outside our table keeps its name, the file's score and tier.
    let brazil = row(&rows, "Brazil");
    assert_eq!(
        (brazil.tier.code(), brazil.hofstede_score, brazil.high_side),
        ("mid", 38.0, false)
    );
    assert!(brazil.response.as_deref().unwrap().contains("\n\n(Stay"));

    // Multilingual file (CRLF): approach from Translated_Prompt, dimension from Expected_Long_Term.
    let multi: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| r.approach == "multilingual")
        .collect();
    assert_eq!(multi.len(), 5);
    assert!(multi.iter().all(|r| r.dimension.code() == "lto"));
    let p = |c: &str| multi.iter().find(|r| r.country == c).unwrap().p_high;
    assert_eq!(p("Japan"), Some(1.0));
    assert_eq!(p("South Korea"), Some(0.0)); // "Short_Term"
    assert_eq!(p("Kazakhstan"), None);
    assert_eq!(p("Greece"), Some(1.0)); // "long-term"
    assert_eq!(p("Georgia"), Some(0.0));
    let japan = multi.iter().find(|r| r.country == "Japan").unwrap();
    assert_eq!(japan.language, "Japanese");
    assert!(japan.response.as_deref().unwrap().contains("「備え」"));
}

#[test]
fn stats_run_on_imported_rows() {
    let (dir, _) = imported();
    let out = dir.path().join("paper");
    hofbench::stats::run(&out).unwrap();
    let by_country = std::fs::read_to_string(out.join("stats/by_country.csv")).unwrap();
    // Indonesia: one inconclusive answer, counted in share_high's denominator.
    let line = by_country
        .lines()
        .find(|l| l.contains(",Indonesia,"))
        .unwrap();
    assert!(line.ends_with(",1,0,0,1,0,NaN,NaN,NaN"), "{line}");
}

#[test]
fn refuses_to_overwrite_results() {
    let (dir, _) = imported();
    let err = import::import(
        &[fixture("personas_idv.csv")],
        "m",
        &dir.path().join("paper"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("already exists"), "{err}");
}

const HEADER: &str = "English_Prompt,Target_Nationality,Resource_Level,Individualistic,\
Individualistic_Collectivist_Score,LLM_Response,Matching_Choice,Expected_Individualistic,\
Expected_Collectivist,MAS_Score,Expected_Masculine,Expected_Feminine";

/// Import `body` (after HEADER) from a file named bad.csv; the error text.
fn import_error(header: &str, body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, format!("{header}\n{body}")).unwrap();
    import::import(&[path], "m", &dir.path().join("out"))
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_input_is_reported_with_file_and_line() {
    let good = "q,Japan,High,True,62,\"a\nb\",Individualistic,x,y,,,\n";
    let cases: &[(&str, &str, &str)] = &[
        // A stray value past the last column (an unquoted comma in the response).
        (
            HEADER,
            "q,Japan,High,True,62,yes, really,Individualistic,x,y,,,\n",
            "bad.csv:2:",
        ),
        (HEADER, &format!("{good}q,Japan,High,True,62\n"), "bad.csv:4:"),
        (
            HEADER,
            &format!("{good}q,Japan,High,True,62,r,Both,x,y,,,\n"),
            "\"Both\"",
        ),
        (
            HEADER,
            &format!("{good}q,Japan,High,True,62,r,Masculine,x,y,,,\n"),
            "side of mas",
        ),
        (HEADER, "q,Japan,High,True,62,r,,x,y,,,\n", "empty Matching_Choice"),
        (HEADER, "q,Japan,High,True,,r,Collectivist,x,y,,,\n", "not a score"),
        (HEADER, "q,Japan,High,maybe,62,r,Collectivist,x,y,,,\n", "True or False"),
        (HEADER, "q,Japan,Huge,True,62,r,Collectivist,x,y,,,\n", "Resource_Level"),
        (HEADER, "q,,High,True,62,r,Collectivist,x,y,,,\n", "empty Target_Nationality"),
        (HEADER, "q,Japan,High,True,62,r,Collectivist,,,,,\n", "no Expected_<Side>"),
        (HEADER, "q,Japan,High,True,62,r,Collectivist,x,y,95,m,f\n", "more than one"),
        (HEADER, "q,Japan,High,True,62,r,Collectivist,x,,,,\n", "empty Expected_Collectivist"),
        (
            HEADER,
            "q,Japan,High,True,62,\"never closed,Collectivist,x,y,,,\n",
            "bad.csv:2:",
        ),
        (
            "Prompt,Target_Nationality,Resource_Level,Matching_Choice,Expected_Masculine,Expected_Feminine",
            "q,Japan,High,Masculine,m,f\n",
            "bad.csv:1: no prompt column",
        ),
        (
            "English_Prompt,Target_Nationality,Resource_Level,Matching_Choice,Expected_Masculine,Expected_Feminine",
            "q,Japan,High,Masculine,m,f\n",
            "bad.csv:1: missing column \"MAS_Score\"",
        ),
    ];
    for (header, body, want) in cases {
        let err = import_error(header, body);
        assert!(err.contains(want), "{body:?}: {err}");
        assert!(err.contains("bad.csv:"), "{body:?}: {err}");
    }
}
