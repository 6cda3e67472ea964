//! Opening GGUF files as untrusted input: every tensor's extent is checked against the file
//! before anything is read, and metadata look-ups fail with the key's name.

use crate::{Error, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::GgmlDType;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Most metadata values (array elements included) a header may hold. candle keeps each in a
/// 32-byte `Value`, so this bounds the parsed metadata to 512 MiB plus its strings, which are
/// bounded by the file. Real vocabularies need a few million (tokens, scores, types, merges).
const MAX_METADATA_VALUES: u64 = 1 << 24;
/// Longest string (key or value): a chat template or a token is far shorter.
const MAX_STRING_BYTES: u64 = 1 << 26;
/// Largest tensor data alignment accepted (llama.cpp writes 32).
const MAX_ALIGNMENT: u64 = 1 << 16;

/// A parsed GGUF header plus the open file its tensors are read from.
pub struct GgufFile {
    pub path: PathBuf,
    pub content: Content,
    pub reader: BufReader<File>,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::model(path, "model file not found"),
            _ => Error::io(path, e),
        })?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut reader = BufReader::new(file);
        // candle's reader sizes its allocations by the header's counts; walk the header first
        // with every count and length checked against the file, so it only sees sane input.
        HeaderCheck::run(&mut reader, file_len)
            .map_err(|msg| Error::model(path, format!("not a usable GGUF file: {msg}")))?;
        reader
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(path, e))?;
        let content = Content::read(&mut reader)
            .map_err(|e| Error::model_from(path, "not a readable GGUF file", e))?;
        let file = Self {
            path: path.to_path_buf(),
            content,
            reader,
        };
        file.check_block_count()?;
        Ok(file)
    }

    /// `{arch}.block_count` sizes per-layer tables before any layer's tensors are read: a
    /// count beyond the `blk.N.*` tensors the file holds (a 1 KB file claiming 2^32 - 1
    /// layers) is refused here, before anything is allocated by it.
    fn check_block_count(&self) -> Result<()> {
        let Some(Value::String(arch)) = self.get("general.architecture") else {
            return Ok(());
        };
        let key = format!("{arch}.block_count");
        let Some(claimed) = self.optional(&key, Self::u64)? else {
            return Ok(());
        };
        let blocks: std::collections::BTreeSet<u64> = self
            .content
            .tensor_infos
            .keys()
            .filter_map(|name| name.strip_prefix("blk.")?.split('.').next()?.parse().ok())
            .collect();
        let provided = blocks.len() as u64;
        if claimed > provided {
            return Err(Error::model(
                &self.path,
                format!(
                    "{key} = {claimed}, but the file's tensors provide blocks {}",
                    describe_blocks(&blocks)
                ),
            ));
        }
        Ok(())
    }

    /// The header's metadata, with typed look-ups that name this file in their errors.
    pub fn metadata(&self) -> Metadata<'_> {
        Metadata::new(&self.content.metadata, &self.path)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    pub fn require(&self, key: &str) -> Result<&Value> {
        self.metadata().require(key)
    }

    pub fn string(&self, key: &str) -> Result<String> {
        self.metadata().string(key).map(str::to_string)
    }

    pub fn u32(&self, key: &str) -> Result<u32> {
        self.metadata().u32(key)
    }

    /// Any non-negative integer value.
    pub fn u64(&self, key: &str) -> Result<u64> {
        self.metadata().u64(key)
    }

    pub fn f32(&self, key: &str) -> Result<f32> {
        self.metadata().f32(key)
    }

    /// Read an optional key with one of the typed readers: None when the key is absent, an
    /// error when it is present with the wrong type.
    pub fn optional<T>(
        &self,
        key: &str,
        read: impl Fn(&Self, &str) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.get(key) {
            Some(_) => read(self, key).map(Some),
            None => Ok(None),
        }
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// Read one tensor (still quantized).
    pub fn tensor(
        &mut self,
        name: &str,
        device: &candle_core::Device,
    ) -> Result<candle_core::quantized::QTensor> {
        if !self.has_tensor(name) {
            return Err(Error::model(&self.path, format!("missing tensor {name}")));
        }
        self.content
            .tensor(&mut self.reader, name, device)
            .map_err(|e| Error::model_from(&self.path, format!("tensor {name}"), e))
    }
}

/// Typed look-ups in a GGUF header's metadata, the one reader of GGUF metadata (models and
/// tokenizers alike): a value of the wrong type is an error naming the file, the key and the
/// type found, never a default.
#[derive(Clone, Copy)]
pub struct Metadata<'a> {
    map: &'a HashMap<String, Value>,
    path: &'a Path,
}

impl<'a> Metadata<'a> {
    /// `path` is only used in error messages.
    pub fn new(map: &'a HashMap<String, Value>, path: &'a Path) -> Self {
        Self { map, path }
    }

    /// A model error about this file.
    pub fn error(&self, msg: impl Into<String>) -> Error {
        Error::model(self.path, msg.into())
    }

    /// [`Metadata::error`] caused by a library's error, kept as the source.
    pub fn error_from(
        &self,
        msg: impl Into<String>,
        source: impl Into<crate::error::Source>,
    ) -> Error {
        Error::model_from(self.path, msg, source)
    }

    /// "`key` should be `want`, found …": a value of the wrong type.
    pub fn wrong_type(&self, key: &str, want: &str, got: &Value) -> Error {
        self.error(format!("{key} should be {want}, found {}", type_name(got)))
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    pub fn require(&self, key: &str) -> Result<&'a Value> {
        self.get(key)
            .ok_or_else(|| self.error(format!("missing GGUF metadata key {key}")))
    }

    pub fn string(&self, key: &str) -> Result<&'a str> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            v => Err(self.wrong_type(key, "a string", v)),
        }
    }

    pub fn bool(&self, key: &str) -> Result<bool> {
        match self.require(key)? {
            Value::Bool(b) => Ok(*b),
            v => Err(self.wrong_type(key, "a bool", v)),
        }
    }

    /// Any non-negative integer value.
    pub fn u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        match (v, integer(v)) {
            (Value::U64(x), _) => Ok(*x),
            (_, Some(x)) => u64::try_from(x)
                .map_err(|_| self.error(format!("{key} = {x} is not a non-negative integer"))),
            _ => Err(self.wrong_type(key, "a non-negative integer", v)),
        }
    }

    pub fn u32(&self, key: &str) -> Result<u32> {
        let v = self.u64(key)?;
        u32::try_from(v).map_err(|_| self.error(format!("{key} = {v} does not fit in 32 bits")))
    }

    /// An f32 or f64 value (as f32).
    pub fn f32(&self, key: &str) -> Result<f32> {
        match self.require(key)? {
            Value::F32(x) => Ok(*x),
            Value::F64(x) => Ok(*x as f32),
            v => Err(self.wrong_type(key, "a float", v)),
        }
    }

    pub fn array(&self, key: &str) -> Result<&'a [Value]> {
        match self.require(key)? {
            Value::Array(items) => Ok(items),
            v => Err(self.wrong_type(key, "an array", v)),
        }
    }

    /// The array `key` read element by element with `read`; an element it refuses is an
    /// error naming `key[i]` and `want`.
    pub fn array_of<T>(
        &self,
        key: &str,
        want: &str,
        read: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Vec<T>> {
        self.array(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| read(v).ok_or_else(|| self.wrong_type(&format!("{key}[{i}]"), want, v)))
            .collect()
    }

    /// Read an optional key with one of the typed readers: None when the key is absent, an
    /// error when it is present with the wrong type.
    pub fn optional<T>(
        &self,
        key: &str,
        read: impl Fn(&Self, &str) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.get(key) {
            Some(_) => read(self, key).map(Some),
            None => Ok(None),
        }
    }
}

/// An integer value of any width, when it fits in an i64.
pub fn integer(v: &Value) -> Option<i64> {
    Some(match v {
        Value::U8(x) => i64::from(*x),
        Value::I8(x) => i64::from(*x),
        Value::U16(x) => i64::from(*x),
        Value::I16(x) => i64::from(*x),
        Value::U32(x) => i64::from(*x),
        Value::I32(x) => i64::from(*x),
        Value::U64(x) => i64::try_from(*x).ok()?,
        Value::I64(x) => *x,
        _ => return None,
    })
}

/// "U32", "array of String", "empty array": a value's type for error messages.
fn type_name(v: &Value) -> String {
    match v {
        Value::Array(items) => match items.first() {
            Some(first) => format!("array of {}", type_name(first)),
            None => "empty array".to_string(),
        },
        other => format!("{:?}", other.value_type()),
    }
}

/// "0..=3" for consecutive blocks, else the first few indices; "none" for none.
fn describe_blocks(blocks: &std::collections::BTreeSet<u64>) -> String {
    match (blocks.first(), blocks.last()) {
        (None, _) | (_, None) => "none".into(),
        (Some(a), Some(b)) if b - a + 1 == blocks.len() as u64 => format!("{a}..={b}"),
        _ => {
            let shown: Vec<String> = blocks.iter().take(8).map(u64::to_string).collect();
            format!("{} ({} in all)", shown.join(", "), blocks.len())
        }
    }
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(hex::encode(h.finalize()))
}

/// A walk over a GGUF header that allocates nothing the file does not back: every count,
/// length, type, shape and offset is checked before candle's reader sizes a buffer by it.
/// Errors are messages; the caller adds the path.
struct HeaderCheck<'a, R> {
    reader: &'a mut R,
    pos: u64,
    file_len: u64,
    /// Length prefixes are u32 in GGUF v1, u64 from v2.
    wide: bool,
    values: u64,
}

type Check<T> = std::result::Result<T, String>;

impl<'a, R: Read> HeaderCheck<'a, R> {
    fn run(reader: &'a mut R, file_len: u64) -> Check<()> {
        let mut h = HeaderCheck {
            reader,
            pos: 0,
            file_len,
            wide: true,
            values: 0,
        };
        let magic = h
            .u32()
            .map_err(|_| "the file is too short to be a GGUF".to_string())?;
        if magic != 0x4655_4747 {
            return Err(format!("bad magic 0x{magic:08x} (expected \"GGUF\")"));
        }
        let version = h.u32()?;
        h.wide = match version {
            1 => false,
            2 | 3 => true,
            v => return Err(format!("unsupported GGUF version {v}")),
        };
        let tensor_count = h.len()?;
        let kv_count = h.len()?;
        // Smallest possible entries: a kv is a key length, a type and one byte; a tensor info
        // a name length, a dimension count, a type and an offset.
        let prefix = if h.wide { 8 } else { 4 };
        let needed = kv_count
            .saturating_mul(prefix + 5)
            .saturating_add(tensor_count.saturating_mul(prefix + 16));
        if needed > h.remaining() {
            return Err(format!(
                "the header declares {tensor_count} tensors and {kv_count} metadata entries, \
                 more than the file's {} bytes can hold",
                h.file_len
            ));
        }
        let mut keys = std::collections::HashSet::new();
        let mut alignment = candle_core::quantized::gguf_file::DEFAULT_ALIGNMENT;
        for _ in 0..kv_count {
            let key = h.string()?;
            let ty = h.u32()?;
            if key == "general.alignment" {
                // llama.cpp requires a u32 power of two here.
                if ty != 4 {
                    return Err(format!("general.alignment has value type {ty}, not u32"));
                }
                alignment = h.u32()? as u64;
                if !alignment.is_power_of_two() || alignment > MAX_ALIGNMENT {
                    return Err(format!(
                        "general.alignment = {alignment} is not a power of two up to {MAX_ALIGNMENT}"
                    ));
                }
                h.count_values(1)?;
            } else {
                h.value(ty, true)
                    .map_err(|e| format!("metadata {key:?}: {e}"))?;
            }
            if !keys.insert(key.clone()) {
                return Err(format!("duplicate metadata key {key:?}"));
            }
        }
        let mut names = std::collections::HashSet::new();
        let mut extents = Vec::new();
        for _ in 0..tensor_count {
            let name = h.string()?;
            let extent = h
                .tensor_info()
                .map_err(|e| format!("tensor {name:?}: {e}"))?;
            if extent.0 % alignment != 0 {
                return Err(format!(
                    "tensor {name:?}: offset {} is not a multiple of the alignment {alignment}",
                    extent.0
                ));
            }
            if !names.insert(name.clone()) {
                return Err(format!("duplicate tensor {name:?}"));
            }
            extents.push((name, extent));
        }
        let data_start = h.pos.div_ceil(alignment) * alignment;
        // Tensors must not share bytes: two names over one extent would let a small file pass
        // for a large model (and read one block's bytes as another's).
        let mut by_offset: Vec<&(String, (u64, u64))> =
            extents.iter().filter(|(_, (_, b))| *b > 0).collect();
        by_offset.sort_by_key(|(_, (offset, _))| *offset);
        for pair in by_offset.windows(2) {
            let ((a, (a_off, a_len)), (b, (b_off, _))) = (pair[0], pair[1]);
            if a_off.saturating_add(*a_len) > *b_off {
                return Err(format!(
                    "tensors {a:?} ({a_len} bytes at offset {a_off}) and {b:?} (at offset \
                     {b_off}) overlap"
                ));
            }
        }
        for (name, (offset, bytes)) in extents {
            let end = data_start
                .checked_add(offset)
                .and_then(|s| s.checked_add(bytes));
            match end {
                Some(end) if end <= h.file_len => {}
                _ => {
                    return Err(format!(
                        "tensor {name:?} ({bytes} bytes at offset {offset}) ends past the end of \
                         the file ({} bytes): the file is truncated or corrupt; fetch it again",
                        h.file_len
                    ))
                }
            }
        }
        Ok(())
    }

    fn remaining(&self) -> u64 {
        self.file_len.saturating_sub(self.pos)
    }

    fn bytes<const N: usize>(&mut self) -> Check<[u8; N]> {
        let mut buf = [0u8; N];
        self.reader
            .read_exact(&mut buf)
            .map_err(|_| format!("the header is cut off at byte {}", self.pos))?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u32(&mut self) -> Check<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }

    fn u64(&mut self) -> Check<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }

    /// A count or string length: u32 in v1, u64 from v2.
    fn len(&mut self) -> Check<u64> {
        if self.wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    /// Skip `n` bytes that must lie inside the file.
    fn skip(&mut self, n: u64) -> Check<()> {
        if n > self.remaining() {
            return Err(format!(
                "{n} bytes at byte {} run past the end of the file ({} bytes)",
                self.pos, self.file_len
            ));
        }
        let copied = std::io::copy(&mut self.reader.by_ref().take(n), &mut std::io::sink())
            .map_err(|e| e.to_string())?;
        if copied != n {
            return Err(format!(
                "the header is cut off at byte {}",
                self.pos + copied
            ));
        }
        self.pos += n;
        Ok(())
    }

    fn count_values(&mut self, n: u64) -> Check<()> {
        self.values = self.values.saturating_add(n);
        if self.values > MAX_METADATA_VALUES {
            return Err(format!(
                "more than {MAX_METADATA_VALUES} metadata values in all"
            ));
        }
        Ok(())
    }

    fn string_len(&mut self) -> Check<u64> {
        let n = self.len()?;
        if n > MAX_STRING_BYTES {
            return Err(format!(
                "a string of {n} bytes (at most {MAX_STRING_BYTES})"
            ));
        }
        Ok(n)
    }

    /// Read a (short) string: keys and tensor names.
    fn string(&mut self) -> Check<String> {
        let n = self.string_len()?;
        if n > 65_535 {
            return Err(format!("a key or tensor name of {n} bytes"));
        }
        if n > self.remaining() {
            return Err(format!(
                "a string of {n} bytes at byte {} runs past the end of the file",
                self.pos
            ));
        }
        let mut buf = vec![0u8; n as usize];
        self.reader
            .read_exact(&mut buf)
            .map_err(|_| format!("the header is cut off at byte {}", self.pos))?;
        self.pos += n;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Skip one metadata value of type `ty`; arrays may not nest (as in llama.cpp).
    fn value(&mut self, ty: u32, top_level: bool) -> Check<()> {
        self.count_values(1)?;
        match ty {
            0 | 1 => self.skip(1),
            // bool: candle rejects anything but 0 and 1 itself
            7 => self.skip(1),
            2 | 3 => self.skip(2),
            4..=6 => self.skip(4),
            10..=12 => self.skip(8),
            8 => {
                let n = self.string_len()?;
                self.skip(n)
            }
            9 if top_level => {
                let elem = self.u32()?;
                let n = self.len()?;
                let fixed = match elem {
                    0 | 1 | 7 => Some(1),
                    2 | 3 => Some(2),
                    4..=6 => Some(4),
                    10..=12 => Some(8),
                    8 => None,
                    9 => return Err("arrays of arrays are not supported".into()),
                    t => return Err(format!("unknown array element type {t}")),
                };
                self.count_values(n)?;
                match fixed {
                    Some(size) => self.skip(n.checked_mul(size).ok_or("absurd array length")?),
                    None => {
                        let prefix = if self.wide { 8 } else { 4 };
                        if n.saturating_mul(prefix) > self.remaining() {
                            return Err(format!(
                                "an array of {n} strings cannot fit in the rest of the file"
                            ));
                        }
                        for _ in 0..n {
                            let len = self.string_len()?;
                            self.skip(len)?;
                        }
                        Ok(())
                    }
                }
            }
            9 => Err("arrays of arrays are not supported".into()),
            t => Err(format!("unknown value type {t}")),
        }
    }

    /// Check one tensor info after its name; returns (offset, size in bytes).
    fn tensor_info(&mut self) -> Check<(u64, u64)> {
        let n_dims = self.u32()?;
        if n_dims > 4 {
            return Err(format!("{n_dims} dimensions (at most 4)"));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.len()?);
        }
        let ty = self.u32()?;
        let dtype = ggml_dtype(ty).ok_or_else(|| format!("unknown or unsupported type {ty}"))?;
        let offset = self.u64()?;
        let elems = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&e| e <= self.file_len.saturating_mul(8))
            .ok_or_else(|| format!("absurd shape {dims:?}"))?;
        let block = dtype.block_size() as u64;
        // ggml stores rows of whole blocks: the first (fastest) dimension must be a multiple.
        if dims.first().is_some_and(|&d| d % block != 0) || elems % block != 0 {
            return Err(format!(
                "shape {dims:?} does not split into {dtype:?} blocks of {block}"
            ));
        }
        let bytes = elems / block * dtype.type_size() as u64;
        Ok((offset, bytes))
    }
}

/// The tensor types candle reads, by their GGUF id.
fn ggml_dtype(id: u32) -> Option<GgmlDType> {
    Some(match id {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        9 => GgmlDType::Q8_1,
        10 => GgmlDType::Q2K,
        11 => GgmlDType::Q3K,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        15 => GgmlDType::Q8K,
        30 => GgmlDType::BF16,
        _ => return None,
    })
}
