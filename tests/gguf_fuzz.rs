//! Untrusted GGUF files: thousands of deterministic mutations of a small valid GGUF (bit flips,
//! truncations, absurd counts, lengths, shapes, offsets and types) must each either load or
//! fail with an error, never panic, and memory must stay bounded by the file, not the header.

use candle_core::Device;
use hofbench::gguf::GgufFile;
use hofbench::models::{self, WeightFormat};
use hofbench::tokenizer::GgufTokenizer;
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
    let tokenizer = GgufTokenizer::from_gguf(&gguf.content, path);
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
