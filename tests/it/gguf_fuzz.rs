//! Untrusted GGUF files: thousands of deterministic mutations of a small valid GGUF (bit flips,
//! truncations, absurd counts, lengths, shapes, offsets and types) must each either load or
//! fail with an error, never panic, and memory must stay bounded by the file, not the header.

use candle_core::Device;
use hofbench::engine::gguf::GgufFile;
use hofbench::engine::models::{self, WeightFormat};
use hofbench::engine::tokenizer::ModelTokenizer;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> Vec<u8> {
    let path =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/quant")).join(name);
    std::fs::read(&path).expect("quant fixture")
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Values that break naive readers: zero, off-by-one sizes, sign bits, all ones.
const NASTY: [u64; 12] = [
    0,
    1,
    3,
    255,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// Where the fields a mutation should hit sit: just after each metadata key and tensor name
/// (their value type / dimension count) and the header's end.
fn field_offsets(file: &[u8], needles: &[&str]) -> Vec<usize> {
    let mut out = Vec::new();
    for needle in needles {
        let n = needle.as_bytes();
        let mut from = 0;
        while let Some(i) = file[from..].windows(n.len()).position(|w| w == n) {
            out.push(from + i + n.len());
            from += i + 1;
        }
    }
    out
}

/// Bytes in the header (everything before the first tensor's data), roughly: the tensor data
/// of these fixtures starts after the last tensor name's info.
fn header_len(file: &[u8]) -> usize {
    let last = field_offsets(file, &["output_norm.weight", "token_embd.weight"])
        .into_iter()
        .max()
        .unwrap();
    (last + 4 + 4 * 8 + 4 + 8).min(file.len())
}

fn mutate(base: &[u8], rng: &mut Rng, targets: &[usize]) -> (String, Vec<u8>) {
    let mut f = base.to_vec();
    let header = header_len(base);
    match rng.below(6) {
        0 => {
            let flips = 1 + rng.below(4);
            for _ in 0..flips {
                let i = rng.below(header);
                f[i] ^= 1 << rng.below(8);
            }
            (format!("{flips} bit flips"), f)
        }
        1 => {
            let keep = if rng.below(2) == 0 {
                rng.below(header)
            } else {
                rng.below(f.len())
            };
            f.truncate(keep);
            (format!("truncated to {keep} bytes"), f)
        }
        2 | 3 => {
            // A nasty value as u32 or u64 at a field boundary (type, count, length, dims,
            // offset) or anywhere in the header.
            let at = if rng.below(4) != 0 {
                targets[rng.below(targets.len())] + 4 * rng.below(6)
            } else {
                rng.below(header)
            };
            let v = NASTY[rng.below(NASTY.len())];
            let bytes = if rng.below(2) == 0 {
                (v as u32).to_le_bytes().to_vec()
            } else {
                v.to_le_bytes().to_vec()
            };
            let end = (at + bytes.len()).min(f.len());
            f[at..end].copy_from_slice(&bytes[..end - at]);
            (format!("{v:#x} at byte {at}"), f)
        }
        4 => {
            // A random type id in a value-type or tensor-type field.
            let at = targets[rng.below(targets.len())] + 4 * rng.below(3);
            let t = rng.below(48) as u32;
            if at + 4 <= f.len() {
                f[at..at + 4].copy_from_slice(&t.to_le_bytes());
            }
            (format!("type {t} at byte {at}"), f)
        }
        _ => {
            // Header counts (tensor count at 8, kv count at 16) and version.
            let at = [4, 8, 16][rng.below(3)];
            let v = NASTY[rng.below(NASTY.len())];
            f[at..at + 8].copy_from_slice(&v.to_le_bytes());
            (format!("header field at {at} = {v:#x}"), f)
        }
    }
}

/// Everything hofbench does with a GGUF before scoring: open, tokenizer, both weight formats,
/// one forward pass. Ok(true) when it all worked.
fn load_everything(path: &Path) -> hofbench::Result<bool> {
    let mut gguf = GgufFile::open(path)?;
    let tokenizer = ModelTokenizer::from_gguf(&gguf.content, path);
    for format in [
        WeightFormat::F32,
        WeightFormat::Quantized,
        WeightFormat::FastQuantized,
    ] {
        let model = models::load_gguf(&mut gguf, &Device::Cpu, format)?;
        let row = [1u32, 2, 3].map(|i| i % model.vocab_size() as u32);
        model.next_token_logits(&[&row])?;
    }
    Ok(tokenizer.is_ok())
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn mutated_gguf_headers_load_or_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let needles = [
        "general.architecture",
        "llama.block_count",
        "llama.context_length",
        "llama.embedding_length",
        "llama.attention.head_count",
        "llama.vocab_size",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.token_type",
        "token_embd.weight",
        "blk.0.attn_q.weight",
        "blk.0.ffn_down.weight",
        "output_norm.weight",
    ];
    let (mut loaded, mut failed, mut cases) = (0, 0, 0);
    for (name, seed, n) in [
        ("tiny-q4_0.gguf", 0x5eed_0001u64, 700),
        ("tiny-q4_k.gguf", 0x5eed_0002, 400),
    ] {
        let base = fixture(name);
        let targets = field_offsets(&base, &needles);
        assert!(targets.len() >= needles.len(), "{name}: fields found");
        let path = dir.path().join(name);
        std::fs::write(&path, &base).unwrap();
        assert!(
            load_everything(&path).unwrap(),
            "{name}: the unmutated file loads"
        );
        let mut rng = Rng(seed);
        for case in 0..n {
            let (what, bytes) = mutate(&base, &mut rng, &targets);
            std::fs::write(&path, &bytes).unwrap();
            match catch_unwind(AssertUnwindSafe(|| load_everything(&path))) {
                Ok(Ok(_)) => loaded += 1,
                Ok(Err(e)) => {
                    failed += 1;
                    let msg = e.to_string();
                    assert!(!msg.is_empty());
                    if let hofbench::Error::Model { path: p, .. } = &e {
                        assert_eq!(p, &path, "{name} case {case} ({what}): {msg}");
                    }
                }
                Err(_) => panic!("{name} case {case} ({what}): the loader panicked"),
            }
            cases += 1;
        }
    }
    eprintln!("{cases} mutated files: {loaded} loaded, {failed} refused");
    assert!(cases >= 1000);
    // Both outcomes happen: the mutations reach past the first check and are not all fatal.
    assert!(failed > cases / 4, "{failed} of {cases} refused");
    assert!(loaded > 10, "{loaded} of {cases} loaded");
    // Memory is bounded by design (counts checked against the file before allocating):
    // nothing here may come near what a header's absurd counts would ask for.
    if let Some(kib) = peak_rss_kib() {
        assert!(kib < 1 << 20, "peak RSS {kib} KiB");
    }
}

#[test]
fn errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let base = fixture("tiny-q4_0.gguf");
    let path = dir.path().join("cut.gguf");
    let check = |bytes: &[u8], want: &str| {
        std::fs::write(&path, bytes).unwrap();
        let e = match GgufFile::open(&path) {
            Ok(_) => panic!("{want}: opened"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("cut.gguf"), "{e}");
        assert!(e.contains(want), "{e}");
    };
    check(&base[..base.len() - 100], "truncated");
    check(&base[..2000], "cut off");
    check(b"GGML\x03\0\0\0", "bad magic");
    let mut huge = base.clone();
    huge[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    check(&huge, "more than the file");
    // A tensor type id no reader knows (the first tensor info ends in type then offset).
    let at = field_offsets(&base, &["token_embd.weight"])[0] + 4 + 2 * 8;
    let mut bad_type = base.clone();
    bad_type[at..at + 4].copy_from_slice(&99u32.to_le_bytes());
    check(&bad_type, "unknown or unsupported type 99");
}

/// A GGUF taken apart into its metadata entries (raw bytes), tensor infos and data, so that
/// structural mutations (renamed tensors, other layer counts, overlapping extents) can be
/// written back as well-formed files that reach past the header checks.
struct Parsed {
    version: u32,
    /// (key, value type, value bytes).
    kvs: Vec<(String, u32, Vec<u8>)>,
    /// (name, dims, type, offset).
    tensors: Vec<(String, Vec<u64>, u32, u64)>,
    data: Vec<u8>,
}

const ALIGN: usize = 32;

fn parse(f: &[u8]) -> Parsed {
    let mut at = 0usize;
    let u32_at = |at: &mut usize| {
        let v = u32::from_le_bytes(f[*at..*at + 4].try_into().unwrap());
        *at += 4;
        v
    };
    let u64_at = |at: &mut usize| {
        let v = u64::from_le_bytes(f[*at..*at + 8].try_into().unwrap());
        *at += 8;
        v
    };
    let string_at = |at: &mut usize| {
        let n = u64_at(at) as usize;
        let s = String::from_utf8(f[*at..*at + n].to_vec()).unwrap();
        *at += n;
        s
    };
    fn skip_value(f: &[u8], at: &mut usize, ty: u32) {
        let fixed = |t: u32| match t {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        };
        match ty {
            8 => {
                let n = u64::from_le_bytes(f[*at..*at + 8].try_into().unwrap()) as usize;
                *at += 8 + n;
            }
            9 => {
                let inner = u32::from_le_bytes(f[*at..*at + 4].try_into().unwrap());
                let n = u64::from_le_bytes(f[*at + 4..*at + 12].try_into().unwrap());
                *at += 12;
                for _ in 0..n {
                    skip_value(f, at, inner);
                }
            }
            t => *at += fixed(t).expect("value type"),
        }
    }
    assert_eq!(&f[..4], b"GGUF");
    at += 4;
    let version = u32_at(&mut at);
    let (n_tensors, n_kv) = (u64_at(&mut at), u64_at(&mut at));
    let mut kvs = Vec::new();
    for _ in 0..n_kv {
        let key = string_at(&mut at);
        let ty = u32_at(&mut at);
        let start = at;
        skip_value(f, &mut at, ty);
        kvs.push((key, ty, f[start..at].to_vec()));
    }
    let mut tensors = Vec::new();
    for _ in 0..n_tensors {
        let name = string_at(&mut at);
        let n_dims = u32_at(&mut at);
        let dims = (0..n_dims).map(|_| u64_at(&mut at)).collect();
        let ty = u32_at(&mut at);
        let offset = u64_at(&mut at);
        tensors.push((name, dims, ty, offset));
    }
    assert!(kvs.iter().all(|(k, _, _)| k != "general.alignment"));
    let data_start = at.div_ceil(ALIGN) * ALIGN;
    Parsed {
        version,
        kvs,
        tensors,
        data: f[data_start..].to_vec(),
    }
}

fn write(p: &Parsed) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(p.version.to_le_bytes());
    out.extend((p.tensors.len() as u64).to_le_bytes());
    out.extend((p.kvs.len() as u64).to_le_bytes());
    let string = |out: &mut Vec<u8>, s: &str| {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    };
    for (key, ty, value) in &p.kvs {
        string(&mut out, key);
        out.extend(ty.to_le_bytes());
        out.extend(value);
    }
    for (name, dims, ty, offset) in &p.tensors {
        string(&mut out, name);
        out.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            out.extend(d.to_le_bytes());
        }
        out.extend(ty.to_le_bytes());
        out.extend(offset.to_le_bytes());
    }
    out.resize(out.len().div_ceil(ALIGN) * ALIGN, 0);
    out.extend(&p.data);
    out
}

fn set_u32(p: &mut Parsed, key: &str, v: u32) {
    let kv = p.kvs.iter_mut().find(|(k, _, _)| k == key).unwrap();
    assert_eq!(kv.1, 4, "{key} is a u32");
    kv.2 = v.to_le_bytes().to_vec();
}

/// Everything `run` does with a model file before scoring: the scorer's load (tokenizer,
/// chat template tried once, model, label tokens), then one forward pass.
fn load_through_the_scorer(path: &Path) -> hofbench::Result<()> {
    let scorer =
        hofbench::engine::loaded_model::LoadedModel::load(path, &Device::Cpu, WeightFormat::F32)?;
    let (_, ids) = scorer.encode_user_turn("Should I stay?")?;
    let ids: Vec<u32> = ids
        .iter()
        .map(|i| i % scorer.model.vocab_size() as u32)
        .collect();
    // A prompt the loaded model refuses (longer than its context, say) is a usage error of
    // scoring, not of the file; it must only not panic.
    let _ = scorer.model.next_token_logits(&[&ids]);
    Ok(())
}

/// Run `load` on `bytes` written to `path`: it must return (Ok or an error naming the file),
/// never panic. Returns the error text, if any.
fn outcome(
    path: &Path,
    bytes: &[u8],
    what: &str,
    load: fn(&Path) -> hofbench::Result<()>,
) -> Option<String> {
    std::fs::write(path, bytes).unwrap();
    match catch_unwind(AssertUnwindSafe(|| load(path))) {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            let msg = e.to_string();
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(
                msg.contains(name),
                "{what}: the error does not name the file: {msg}"
            );
            Some(msg)
        }
        Err(_) => panic!("{what}: the loader panicked"),
    }
}

#[test]
fn structural_mutations_through_the_whole_load_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("structural.gguf");
    let base = parse(&fixture("tiny-q4_0.gguf"));
    assert_eq!(
        write(&base),
        fixture("tiny-q4_0.gguf"),
        "the rewriter round-trips"
    );
    let blocks = base
        .tensors
        .iter()
        .filter_map(|(n, ..)| {
            n.strip_prefix("blk.")?
                .split('.')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap()
        + 1;
    let load = |p: &Path| -> hofbench::Result<()> {
        let _ = load_through_the_scorer(p);
        load_everything(p).map(drop)
    };
    let mut cases = 0;
    // Layer counts: none, one more than the tensors hold, absurd; with and without a tensor
    // renamed to be the claimed last block (which once passed the loader's own check).
    for claimed in [0u32, blocks as u32 + 1, 1 << 20, u32::MAX] {
        for rename in [false, true] {
            let mut p = clone(&base);
            set_u32(&mut p, "llama.block_count", claimed);
            if rename && claimed > 0 {
                let t = p
                    .tensors
                    .iter_mut()
                    .find(|(n, ..)| *n == format!("blk.{}.attn_q.weight", blocks - 1))
                    .unwrap();
                t.0 = format!("blk.{}.attn_q.weight", claimed - 1);
            }
            let what = format!("block_count {claimed}, renamed {rename}");
            let err = outcome(&path, &write(&p), &what, load).expect(&what);
            // Beyond the blocks the tensors provide: refused by the count itself, whatever
            // tensor was renamed to look like the last block.
            if u64::from(claimed) > blocks + 1 {
                assert!(err.contains("block_count"), "{what}: {err}");
            }
            cases += 1;
        }
    }
    // Renamed tensors: a block's tensor under another role, or two with one name.
    for (from, to) in [
        ("blk.0.attn_q.weight", "blk.0.attn_x.weight"),
        ("blk.0.ffn_down.weight", "blk.0.ffn_up.weight"),
        ("output_norm.weight", "token_embd.weight"),
    ] {
        let mut p = clone(&base);
        if let Some(t) = p.tensors.iter_mut().find(|(n, ..)| n == from) {
            t.0 = to.to_string();
        }
        let what = format!("{from} renamed {to}");
        outcome(&path, &write(&p), &what, load).expect(&what);
        cases += 1;
    }
    // Overlapping extents: each tensor moved onto its neighbour's bytes.
    for i in 1..base.tensors.len() {
        let mut p = clone(&base);
        p.tensors[i].3 = p.tensors[i - 1].3;
        let what = format!("tensor {i} on tensor {}'s bytes", i - 1);
        let err = outcome(&path, &write(&p), &what, load).expect(&what);
        assert!(err.contains("overlap"), "{what}: {err}");
        cases += 1;
    }
    eprintln!("{cases} structural mutations refused cleanly");
    if let Some(kib) = peak_rss_kib() {
        assert!(kib < 1 << 20, "peak RSS {kib} KiB");
    }
}

fn clone(p: &Parsed) -> Parsed {
    Parsed {
        version: p.version,
        kvs: p.kvs.clone(),
        tensors: p.tensors.clone(),
        data: p.data.clone(),
    }
}

/// A 1 KB file that claims 2^32 - 1 layers and has no tensors: refused, nothing allocated.
#[test]
fn a_tiny_file_claiming_four_billion_layers_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claims.gguf");
    let mut p = parse(&fixture("tiny-q4_0.gguf"));
    set_u32(&mut p, "llama.block_count", u32::MAX);
    p.kvs.retain(|(k, _, _)| !k.starts_with("tokenizer."));
    p.tensors.clear();
    p.data.clear();
    let bytes = write(&p);
    assert!(bytes.len() < 1024, "{} bytes", bytes.len());
    let err = outcome(&path, &bytes, "4e9 layers", |p| {
        models::load_gguf(&mut GgufFile::open(p)?, &Device::Cpu, WeightFormat::F32).map(drop)
    })
    .unwrap();
    assert!(err.contains("block_count = 4294967295"), "{err}");
}

fn family_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/families/gemma3"
    ))
}

/// Load a Hugging Face folder through the scorer; an error must name the folder or a file in
/// it, and nothing may panic.
fn hf_outcome(dir: &Path, what: &str) -> Option<String> {
    match catch_unwind(AssertUnwindSafe(|| load_through_the_scorer(dir))) {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&dir.display().to_string()),
                "{what}: the error does not name the folder: {msg}"
            );
            Some(msg)
        }
        Err(_) => panic!("{what}: the loader panicked"),
    }
}

/// Untrusted Hugging Face folders: config.json values, tokenizer.json ids and the chat
/// template of tokenizer_config.json set to absurd values, one at a time.
#[test]
fn mutated_hf_folders_load_or_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    let src = family_dir();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    assert!(hf_outcome(&dir, "unmutated").is_none(), "the folder loads");
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(src.join(f)).unwrap()).unwrap()
    };
    let write = |f: &str, v: &serde_json::Value| {
        std::fs::write(dir.join(f), serde_json::to_string(v).unwrap()).unwrap()
    };
    let values: Vec<serde_json::Value> = NASTY
        .iter()
        .map(|&v| serde_json::json!(v))
        .chain([
            serde_json::json!(-1),
            serde_json::json!(1.5),
            serde_json::json!("x"),
            serde_json::json!(null),
            serde_json::json!([]),
        ])
        .collect();
    let (mut cases, mut refused) = (0, 0);
    let config = read("config.json");
    for key in [
        "num_hidden_layers",
        "hidden_size",
        "intermediate_size",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "vocab_size",
        "max_position_embeddings",
        "sliding_window",
        "rope_theta",
        "rms_norm_eps",
    ] {
        for v in &values {
            let mut c = config.clone();
            c[key] = v.clone();
            write("config.json", &c);
            refused += usize::from(hf_outcome(&dir, &format!("config {key} = {v}")).is_some());
            cases += 1;
        }
    }
    write("config.json", &config);
    let tokenizer = read("tokenizer.json");
    for v in &values {
        for target in ["vocab", "added"] {
            let mut t = tokenizer.clone();
            match target {
                "vocab" => {
                    let vocab = t["model"]["vocab"].as_object_mut().unwrap();
                    let key = vocab.keys().nth(40).unwrap().clone();
                    vocab[&key] = v.clone();
                }
                _ => t["added_tokens"][1]["id"] = v.clone(),
            }
            write("tokenizer.json", &t);
            refused +=
                usize::from(hf_outcome(&dir, &format!("tokenizer {target} id {v}")).is_some());
            cases += 1;
        }
    }
    write("tokenizer.json", &tokenizer);
    let tc = read("tokenizer_config.json");
    let mut rng = Rng(0x7e3b_1a7e);
    for case in 0..120 {
        let mut t = tc.clone();
        let template = hostile_template(&mut rng);
        t["chat_template"] = serde_json::json!(template);
        write("tokenizer_config.json", &t);
        refused += usize::from(hf_outcome(&dir, &format!("template {case}: {template}")).is_some());
        cases += 1;
    }
    eprintln!("{cases} mutated folders: {refused} refused");
    assert!(refused > cases / 4, "{refused} of {cases} refused");
    if let Some(kib) = peak_rss_kib() {
        assert!(kib < 1 << 20, "peak RSS {kib} KiB");
    }
}

/// A chat template stitched from pieces that loop, nest, recurse, repeat strings, pad, raise
/// and misuse values, with nasty numbers.
fn hostile_template(rng: &mut Rng) -> String {
    let numbers = ["0", "3", "100000", "10**6", "10**15", "-1", "2**63"];
    let mut out = String::from("{{ bos_token }}");
    let pieces = 1 + rng.below(4);
    let mut open = 0;
    for _ in 0..pieces {
        let n = numbers[rng.below(numbers.len())];
        let piece = match rng.below(12) {
            0 => {
                open += 1;
                format!("{{% for i{open} in range({n}) %}}")
            }
            1 => format!("{{{{ messages[0]['content']|indent({n}) }}}}"),
            2 => format!("{{{{ 'ab' * {n} }}}}"),
            3 => format!("{{{{ messages|tojson(indent={n}) }}}}"),
            4 => format!("{{{{ '%{n}d'|format(1) }}}}"),
            5 => format!("{{{{ '{{:>{n}}}'.format('x') }}}}"),
            6 => "{% macro m(k) %}{{ m(k) }}{% endmacro %}{{ m(1) }}".to_string(),
            7 => "{{ raise_exception('unsupported') }}".to_string(),
            8 => format!("{{{{ messages[{n}]['content'] }}}}"),
            9 => format!("{{{{ (messages * {n})|length }}}}"),
            10 => "{{ messages[0]['content'] ~ eos_token }}".to_string(),
            _ => "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}".to_string(),
        };
        out.push_str(&piece);
    }
    for _ in 0..open {
        out.push_str("x{% endfor %}");
    }
    if rng.below(8) == 0 {
        out.push_str("{% for"); // does not compile
    }
    out
}

/// The dangerous layer count: block 0 intact, plus a second tensor info naming the claimed
/// last block's query over block 0's bytes. Every per-tensor check passes; a loader that
/// trusted `block_count` would size its layer tables by it (2^32 - 1) and abort.
#[test]
fn a_copied_tensor_posing_as_the_last_of_four_billion_blocks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copied.gguf");
    let base = parse(&fixture("tiny-q4_0.gguf"));
    for claimed in [u32::MAX, 1u32 << 20] {
        let mut p = clone(&base);
        set_u32(&mut p, "llama.block_count", claimed);
        let q = p
            .tensors
            .iter()
            .find(|(n, ..)| n == "blk.0.attn_q.weight")
            .unwrap()
            .clone();
        p.tensors
            .push((format!("blk.{}.attn_q.weight", claimed - 1), q.1, q.2, q.3));
        let what = format!("block_count {claimed} with a copied last-block tensor");
        let err = outcome(&path, &write(&p), &what, |p| {
            let _ = load_through_the_scorer(p);
            load_everything(p).map(drop)
        })
        .expect(&what);
        assert!(
            err.contains("block_count") || err.contains("overlap"),
            "{what}: {err}"
        );
    }
}
