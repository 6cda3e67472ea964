//! `run --approach control` (no persona, country `none`, logits and generate, sharded) and
//! `run --system` / `--system-file` (a system turn through the chat template, recorded and
//! checked on resume) on the real default model; the persona effect of a control and a
//! personas run through `hofbench stats`.

use crate::harness::{fails_with, hofbench, manifest, ok_stderr, result_rows, s};
use hofbench::engine::chat_template::ChatTemplate;
use std::path::Path;

#[test]
fn control_run_has_no_persona_and_pairs_with_a_personas_run() {
    let tmp = tempfile::tempdir().unwrap();
    let control = tmp.path().join("control");
    let common = ["--quiet", "run", "--dimensions", "idv", "--limit", "3"];
    let run = |extra: &[&str], out: &Path| {
        let mut args: Vec<&str> = common.to_vec();
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", s(out)]);
        hofbench(&args)
    };
    // Shards cut the control grid (3 items) like any other, batch by batch (one item a batch
    // here, so the two shards get 2 and 1); then the whole run.
    let shard = |i: &'static str| {
        [
            "--approach",
            "control",
            "--keep-text",
            "--batch-size",
            "1",
            "--shard",
            i,
        ]
    };
    ok_stderr(&run(&shard("0/2"), &control));
    assert_eq!(result_rows(&control).len(), 2);
    let shard1 = tmp.path().join("shard1");
    ok_stderr(&run(&shard("1/2"), &shard1));
    assert_eq!(result_rows(&shard1).len(), 1);
    fails_with(&run(&shard("1/2"), &control), &["shard 0/2"]);
    std::fs::remove_dir_all(&control).unwrap();
    std::fs::remove_dir_all(&shard1).unwrap();
    ok_stderr(&run(&["--approach", "control", "--keep-text"], &control));
    let got = result_rows(&control);
    assert_eq!(got.len(), 3, "one row per item");
    for r in &got {
        assert_eq!(r["approach"], "control");
        assert_eq!(r["country"], "none");
        assert_eq!(r["tier"], "none");
        let text = r["rendered"][0].as_str().unwrap();
        assert!(
            !text.contains("imagining") && !text.contains("country of"),
            "{text}"
        );
        assert!(text.contains("Answer with the letter of the option you choose: A or B."));
    }
    assert_eq!(
        manifest(&control)["settings"]["countries"],
        serde_json::json!(["none"])
    );
    // Resuming does nothing more.
    ok_stderr(&run(&["--approach", "control", "--keep-text"], &control));
    assert_eq!(result_rows(&control).len(), 3);
    // `verify` rebuilds the control grid from the manifest and re-scores it exactly.
    let verified = hofbench(&["verify", s(&control), "--sample", "2"]);
    ok_stderr(&verified);
    let verified = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.contains("OK"), "{verified}");
    fails_with(
        &run(
            &["--approach", "control", "--countries", "Japan"],
            &tmp.path().join("x"),
        ),
        &["--approach control", "--countries"],
    );

    let personas = tmp.path().join("personas");
    ok_stderr(&run(&["--countries", "Japan,Sweden,Albania"], &personas));
    ok_stderr(&hofbench(&[
        "--quiet",
        "stats",
        s(tmp.path()),
        "--resamples",
        "50",
    ]));
    let effect = std::fs::read_to_string(tmp.path().join("stats/persona_effect.csv")).unwrap();
    let lines: Vec<&str> = effect.lines().collect();
    assert_eq!(lines.len(), 1 + 3, "{effect}");
    assert!(
        lines[1].starts_with("smollm2-135m-instruct,idv,"),
        "{effect}"
    );
    let by_dim =
        std::fs::read_to_string(tmp.path().join("stats/persona_effect_by_dimension.csv")).unwrap();
    assert!(
        by_dim.contains("\nsmollm2-135m-instruct,idv,3,3,"),
        "{by_dim}"
    );
    let summary = std::fs::read_to_string(tmp.path().join("stats/summary.md")).unwrap();
    assert!(summary.contains("## Persona effect") && summary.contains("- idv: personas"));
    // The control run is not a country of the personas tables.
    let by_country = std::fs::read_to_string(tmp.path().join("stats/by_country.csv")).unwrap();
    assert!(!by_country.contains(",none,"), "{by_country}");
}

#[test]
fn control_in_generate_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gen");
    ok_stderr(&hofbench(&[
        "--quiet",
        "run",
        "--mode",
        "generate",
        "--approach",
        "control",
        "--dimensions",
        "mas",
        "--limit",
        "1",
        "--rounds",
        "2",
        "--max-new-tokens",
        "6",
        "--keep-text",
        "--out",
        s(&out),
    ]));
    let got = result_rows(&out);
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(
            (r["country"].as_str(), r["mode"].as_str()),
            (Some("none"), Some("generate"))
        );
    }
}

#[test]
fn system_turn_is_rendered_recorded_and_checked_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sys");
    let system = "You are a careful advisor.";
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--quiet",
            "run",
            "--countries",
            "Japan",
            "--dimensions",
            "idv",
            "--limit",
            "1",
            "--keep-text",
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        hofbench(&args)
    };
    ok_stderr(&run(&["--system", system]));
    let text = result_rows(&out)[0]["rendered"][0]
        .as_str()
        .unwrap()
        .to_string();
    // SmolLM2's ChatML template: our system turn replaces its default one.
    assert!(
        text.starts_with(&format!(
            "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"
        )),
        "{text}"
    );
    assert!(!text.contains("named SmolLM"), "{text}");
    assert_eq!(manifest(&out)["settings"]["system"], system);
    // The same text from a file resumes; another text or none is refused.
    let file = tmp.path().join("system.txt");
    std::fs::write(&file, format!("{system}\n")).unwrap();
    ok_stderr(&run(&["--system-file", s(&file)]));
    fails_with(
        &run(&["--system", "Be brief."]),
        &["settings.system", "Be brief."],
    );
    fails_with(&run(&[]), &["settings.system", "absent"]);
    std::fs::write(&file, "\n").unwrap();
    fails_with(
        &hofbench(&[
            "run",
            "--system-file",
            s(&file),
            "--out",
            s(&tmp.path().join("e")),
        ]),
        &["--system-file", "empty"],
    );
    // Without --system, the template's own default system turn stays.
    let plain = tmp.path().join("plain");
    ok_stderr(&hofbench(&[
        "--quiet",
        "run",
        "--countries",
        "Japan",
        "--dimensions",
        "idv",
        "--limit",
        "1",
        "--keep-text",
        "--out",
        s(&plain),
    ]));
    let text = result_rows(&plain)[0]["rendered"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("named SmolLM"), "{text}");
    assert!(manifest(&plain)["settings"].get("system").is_none());
}

#[test]
fn system_turn_through_templates_with_and_without_a_system_role() {
    // Gemma 3's way: the system text is folded into the first user turn.
    let gemma3 = "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set first_user_prefix = \"\" -%}{%- set loop_messages = messages -%}{%- endif -%}{%- for message in loop_messages -%}{{ '<start_of_turn>user\n' + (first_user_prefix if loop.first else \"\") + message['content'] | trim + '<end_of_turn>\n' }}{%- endfor -%}{%- if add_generation_prompt -%}{{'<start_of_turn>model\n'}}{%- endif -%}";
    let chat = ChatTemplate::new(Some(gemma3), "<bos>", "<eos>").unwrap();
    assert_eq!(
        chat.render_turn(Some("Be kind."), "Hi").unwrap(),
        "<bos><start_of_turn>user\nBe kind.\n\nHi<end_of_turn>\n<start_of_turn>model\n"
    );
    assert_eq!(
        chat.render_turn(None, "Hi").unwrap(),
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    );
    // Gemma 1 and 2 raise, as they do in transformers: a clear error.
    let gemma2 = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for m in messages %}<start_of_turn>user\n{{ m['content'] }}<end_of_turn>\n{% endfor %}<start_of_turn>model\n";
    let chat = ChatTemplate::new(Some(gemma2), "", "").unwrap();
    let err = chat
        .render_turn(Some("Be kind."), "Hi")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--system") && err.contains("System role not supported"),
        "{err}"
    );
    assert!(chat.render_turn(None, "Hi").is_ok());
    // A template that ignores the system message is refused rather than run without it.
    let drops =
        "{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}";
    let chat = ChatTemplate::new(Some(drops), "", "").unwrap();
    let err = chat
        .render_turn(Some("Be kind."), "Hi")
        .unwrap_err()
        .to_string();
    assert!(err.contains("dropped"), "{err}");
    // The plain format (models without a template) writes it as the first paragraph.
    let chat = ChatTemplate::new(None, "", "").unwrap();
    assert_eq!(
        chat.render_turn(Some("Be kind."), "Hi").unwrap(),
        "Be kind.\n\nUser: Hi\n\nAssistant:"
    );
}
