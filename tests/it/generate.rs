//! Generation (`run --mode generate`): the KV-cached decoder against transformers' greedy
//! generation, batch invariance, stop tokens with padding, seeded sampling, Hugging Face's
//! logits processors, and a resumed CLI run. References: tests/fixtures/generate/expected.json
//! (tests/fixtures/generate/gen_generate.py) on the tiny checkpoints of tests/fixtures/families.

use crate::common;

use crate::harness::{bin, fails_with, hofbench, ok_stderr, result_rows};
use candle_core::Device;
use hofbench::engine::generate::sampling::process;
use hofbench::engine::generate::{generate, Reply, Request, RowRng, Sampling, Stop};
use hofbench::engine::models::{load_hf, CausalLm, WeightFormat};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

const FAMILIES: [&str; 5] = ["llama", "llama3", "gemma", "gemma2", "gemma3"];

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generate/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn family_dir(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/families")
        .join(family)
}

fn model(family: &str) -> Box<dyn CausalLm> {
    model_in(family, WeightFormat::F32)
}

fn model_in(family: &str, format: WeightFormat) -> Box<dyn CausalLm> {
    load_hf(&family_dir(family), &Device::Cpu, format).unwrap()
}

fn greedy(penalty: f64) -> Sampling {
    Sampling {
        greedy: true,
        repetition_penalty: penalty,
        ..Sampling::default()
    }
}

/// Generate for `rows` (indices into `prompts`) in one batch, each row with its own stream.
fn run(
    m: &dyn CausalLm,
    prompts: &[Vec<u32>],
    rows: &[usize],
    s: &Sampling,
    new: usize,
    stop: &[u32],
) -> Vec<Reply> {
    let requests: Vec<Request> = rows
        .iter()
        .map(|&r| Request {
            prompt: &prompts[r],
            rng: RowRng::for_row(7, "m", "personas", "Japan", &format!("p{r}"), 1),
        })
        .collect();
    generate(
        m,
        &requests,
        s,
        new,
        Stop {
            tokens: stop,
            texts: None,
        },
    )
    .unwrap()
}

#[test]
fn greedy_tokens_match_transformers_for_every_family() {
    greedy_tokens_match_transformers(WeightFormat::F32);
}

#[test]
fn greedy_tokens_match_transformers_with_the_weights_kept_as_stored() {
    // `--weights quantized`: prefill through dequantized tiles and gemm, every step through
    // the fused dequantize-and-dot kernel.
    greedy_tokens_match_transformers(WeightFormat::Quantized);
}

fn greedy_tokens_match_transformers(format: WeightFormat) {
    let fx = fixture();
    let prompts = common::rows(&fx);
    let new = fx["new_tokens"].as_u64().unwrap() as usize;
    let all: Vec<usize> = (0..prompts.len()).collect();
    for family in FAMILIES {
        let m = model_in(family, format);
        for penalty in ["1.0", "1.5"] {
            let want = &fx["greedy"][family][penalty];
            // All rows in one right-padded batch of different lengths.
            let got = run(
                m.as_ref(),
                &prompts,
                &all,
                &greedy(penalty.parse().unwrap()),
                new,
                &[],
            );
            let (mut same, mut total) = (0, 0);
            for (r, reply) in got.iter().enumerate() {
                let hf = common::ids(&want["tokens"][r]);
                assert_eq!(reply.tokens.len(), new, "{family} {penalty} row {r}");
                assert!(!reply.stopped);
                for (step, (a, b)) in reply.tokens.iter().zip(&hf).enumerate() {
                    total += 1;
                    if a == b {
                        same += 1;
                        continue;
                    }
                    // Only a near-tie in transformers' own logits may go the other way; the
                    // rest of the row then follows another path.
                    let margin = want["margins"][r][step].as_f64().unwrap();
                    assert!(
                        margin < 1e-3,
                        "{family} penalty {penalty} row {r} step {step}: {a} vs transformers' {b} \
                         (margin {margin})"
                    );
                    total += new - step - 1;
                    break;
                }
            }
            assert!(
                same * 10 >= total * 9,
                "{family} {penalty}: {same} of {total}"
            );
        }
    }
}

#[test]
fn greedy_output_does_not_depend_on_batch_or_neighbours() {
    let fx = fixture();
    let prompts = common::rows(&fx);
    for family in ["llama", "gemma2", "gemma3"] {
        let m = model(family);
        let alone: Vec<Vec<u32>> = (0..prompts.len())
            .map(|r| {
                run(m.as_ref(), &prompts, &[r], &greedy(1.5), 16, &[])[0]
                    .tokens
                    .clone()
            })
            .collect();
        // Eight rows: every prompt twice, shuffled, so each has other neighbours and padding.
        let shuffled = [3, 0, 2, 1, 1, 3, 0, 2];
        let batch = run(m.as_ref(), &prompts, &shuffled, &greedy(1.5), 16, &[]);
        for (reply, &r) in batch.iter().zip(&shuffled) {
            assert_eq!(reply.tokens, alone[r], "{family} row {r}");
        }
        // Beyond 16 rows (where steps once left the row-dot kernel for gemm): 32 rows.
        let many: Vec<usize> = (0..32).map(|i| (i * 5 + 1) % prompts.len()).collect();
        let batch = run(m.as_ref(), &prompts, &many, &greedy(1.5), 16, &[]);
        for (reply, &r) in batch.iter().zip(&many) {
            assert_eq!(reply.tokens, alone[r], "{family} row {r} of 32");
        }
    }
}

#[test]
fn rows_stop_at_their_own_stop_token_while_others_go_on() {
    let fx = fixture();
    let prompts = common::rows(&fx);
    let m = model("gemma3");
    let all: Vec<usize> = (0..prompts.len()).collect();
    let free = run(m.as_ref(), &prompts, &all, &greedy(1.5), 24, &[]);
    // Stop tokens that first appear at different steps of different rows.
    let stop: Vec<u32> = vec![free[0].tokens[3], free[2].tokens[10]];
    let first_stop = |t: &[u32]| t.iter().position(|x| stop.contains(x));
    let stopped = run(m.as_ref(), &prompts, &all, &greedy(1.5), 24, &stop);
    let mut lengths = HashSet::new();
    for (r, (s, f)) in stopped.iter().zip(&free).enumerate() {
        match first_stop(&f.tokens) {
            Some(k) => {
                assert_eq!(s.tokens, f.tokens[..k], "row {r}");
                assert!(s.stopped, "row {r}");
                lengths.insert(k);
            }
            None => {
                assert_eq!(s.tokens, f.tokens, "row {r}");
                assert!(!s.stopped, "row {r}");
                lengths.insert(24);
            }
        }
    }
    assert!(
        lengths.len() >= 2,
        "rows should finish at different steps: {lengths:?}"
    );
    // A row that stops at once has an empty reply.
    let at_once = run(
        m.as_ref(),
        &prompts,
        &[0, 1],
        &greedy(1.5),
        5,
        &[free[0].tokens[0]],
    );
    assert!(at_once[0].tokens.is_empty() && at_once[0].stopped);
}

#[test]
fn sampling_repeats_with_a_seed_and_ignores_the_batch() {
    let fx = fixture();
    let prompts = common::rows(&fx);
    // A hotter setting than the paper's so that the tiny models' draws vary.
    let hot = Sampling {
        temperature: 1.5,
        top_k: 50,
        top_p: 0.95,
        ..Sampling::default()
    };
    for family in ["llama", "gemma3"] {
        let m = model(family);
        let all: Vec<usize> = (0..prompts.len()).collect();
        let a = run(m.as_ref(), &prompts, &all, &hot, 20, &[]);
        let b = run(m.as_ref(), &prompts, &all, &hot, 20, &[]);
        assert_eq!(a, b, "{family}: same seed, same text");
        for r in all.clone() {
            let alone = run(m.as_ref(), &prompts, &[r], &hot, 20, &[]);
            assert_eq!(alone[0], a[r], "{family} row {r} alone");
        }
        // Another stream (another seed) gives other text.
        let requests: Vec<Request> = all
            .iter()
            .map(|&r| Request {
                prompt: &prompts[r],
                rng: RowRng::for_row(8, "m", "personas", "Japan", &format!("p{r}"), 1),
            })
            .collect();
        let c = generate(m.as_ref(), &requests, &hot, 20, Stop::default()).unwrap();
        assert_ne!(a, c, "{family}: another seed");
    }
}

#[test]
fn processors_match_transformers() {
    let fx = fixture();
    for (i, case) in fx["processors"].as_array().unwrap().iter().enumerate() {
        let s: Sampling = serde_json::from_value(case["settings"].clone()).unwrap();
        for (r, row) in case["logits"].as_array().unwrap().iter().enumerate() {
            let mut logits: Vec<f32> = row
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let seen: HashSet<u32> = common::ids(&case["ids"][r]).into_iter().collect();
            process(&mut logits, &seen, &s);
            for (j, (got, want)) in logits
                .iter()
                .zip(case["processed"][r].as_array().unwrap())
                .enumerate()
            {
                match want.as_f64() {
                    None => assert_eq!(*got, f32::NEG_INFINITY, "case {i} row {r} token {j}"),
                    Some(w) => assert!(
                        (*got as f64 - w).abs() <= 1e-5 * w.abs().max(1.0),
                        "case {i} row {r} token {j}: {got} vs {w}"
                    ),
                }
            }
        }
    }
}

fn rows_of(dir: &Path) -> Vec<Value> {
    let mut rows = result_rows(dir);
    let key = |r: &Value| {
        format!(
            "{}/{}/{}/{}",
            r["country"], r["prompt_id"], r["round"], r["dimension"]
        )
    };
    rows.sort_by_key(key);
    rows
}

#[test]
fn a_killed_generate_run_resumes_with_the_same_text() {
    let tmp = tempfile::tempdir().unwrap();
    let model = family_dir("gemma3");
    let (full, resumed) = (tmp.path().join("full"), tmp.path().join("resumed"));
    let args = |out: &Path| -> Vec<String> {
        [
            "--quiet",
            "run",
            "--mode",
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--countries",
            "Japan,Albania,Germany",
            "--dimensions",
            "idv,pdi",
            "--limit",
            "1",
            "--max-new-tokens",
            "12",
            "--temperature",
            "1.5",
            "--batch-size",
            "3",
            "--seed",
            "5",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    ok_stderr(&hofbench(&args(&full)));
    let want = rows_of(&full);
    assert_eq!(want.len(), 3 * 2 * 2);
    for r in &want {
        assert_eq!(r["mode"], "generate");
        // The judge filled p_high before the row was written: 1 or 0, or null (inconclusive).
        let verdict = r["judge"]["verdict"].as_str().unwrap();
        let want = match verdict {
            "high" => Value::from(1.0),
            "low" => Value::from(0.0),
            _ => Value::Null,
        };
        assert_eq!(r["p_high"], want, "{verdict}");
        assert!(r["tokens_generated"].as_u64().unwrap() <= 12);
        assert!(r["response"].is_string());
    }
    // A run SIGKILLed once its first batch is written, while it still runs; then what a kill
    // in the middle of a write leaves, a line cut inside a multi-byte character.
    let file = resumed.join("results.jsonl");
    let mut child = bin().args(args(&resumed)).spawn().unwrap();
    let t0 = std::time::Instant::now();
    while std::fs::metadata(&file).map_or(0, |m| m.len()) == 0 {
        assert!(t0.elapsed().as_secs() < 300, "no row written in time");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run finished before the kill"
    );
    child.kill().unwrap(); // SIGKILL
    assert!(!child.wait().unwrap().success());
    let text = std::fs::read_to_string(&file).unwrap();
    let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
    let done = complete.lines().count();
    assert!((1..12).contains(&done), "{done} of 12 rows after the kill");
    let torn = format!("{complete}{{\"model\":\"gemma3\",\"response\":\"日本");
    let cut = torn.len() - 2; // inside the three bytes of "本"
    std::fs::write(&file, &torn.as_bytes()[..cut]).unwrap();
    let loud: Vec<String> = args(&resumed).into_iter().skip(1).collect();
    let log = ok_stderr(&hofbench(&loud));
    assert!(
        log.contains(&format!("resuming: {done} of 12 replies already done")),
        "{log}"
    );
    // The same text; the judge's probabilities move by float noise (~1e-8) with the batch
    // they were judged in, so they are compared with a tolerance and the verdicts exactly.
    let (mut got, mut want) = (rows_of(&resumed), want);
    for (g, w) in got.iter_mut().zip(want.iter_mut()) {
        for field in ["p_high", "p_low", "p_neither"] {
            let (a, b) = (g["judge"][field].as_f64(), w["judge"][field].as_f64());
            assert!(
                (a.unwrap() - b.unwrap()).abs() < 1e-6,
                "{field}: {a:?} vs {b:?}"
            );
        }
        for r in [g, w] {
            let judge = r["judge"].as_object_mut().unwrap();
            judge.retain(|k, _| k == "verdict" || k == "source");
        }
    }
    assert_eq!(got, want);
    // Other sampling settings, or a logits run, in the same folder are refused.
    let mut other = args(&resumed);
    other.extend(["--top-k".into(), "3".into()]);
    fails_with(&hofbench(&other), &["other settings"]);
    // A logits run (without the generate flags, which logits mode refuses) in the folder.
    let mut logits: Vec<String> = Vec::new();
    let mut given = args(&resumed).into_iter();
    while let Some(a) = given.next() {
        match a.as_str() {
            "--mode" | "--max-new-tokens" | "--temperature" | "--seed" => {
                given.next();
            }
            _ => logits.push(a),
        }
    }
    fails_with(&hofbench(&logits), &["a generate run"]);
}
