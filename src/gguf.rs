//! Opening GGUF files as untrusted input: every tensor's extent is checked against the file
//! before anything is read, and metadata look-ups fail with the key's name.

use crate::{Error, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

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
        let content = Content::read(&mut reader)
            .map_err(|e| Error::model(path, format!("not a readable GGUF file: {e}")))?;
        for (name, info) in &content.tensor_infos {
            let elems = info
                .shape
                .dims()
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
                .ok_or_else(|| {
                    Error::model(
                        path,
                        format!("tensor {name}: absurd shape {:?}", info.shape),
                    )
                })?;
            let block = info.ggml_dtype.block_size() as u64;
            if elems % block != 0 {
                return Err(Error::model(
                    path,
                    format!("tensor {name}: {elems} elements is not a multiple of the {:?} block size {block}", info.ggml_dtype),
                ));
            }
            let bytes = (elems / block).checked_mul(info.ggml_dtype.type_size() as u64);
            let end = bytes
                .and_then(|b| b.checked_add(info.offset))
                .and_then(|b| b.checked_add(content.tensor_data_offset));
            match end {
                Some(end) if end <= file_len => {}
                _ => {
                    return Err(Error::model(
                        path,
                        format!(
                            "tensor {name} ends past the end of the file ({file_len} bytes): \
                             the file is truncated or corrupt; fetch it again"
                        ),
                    ))
                }
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            content,
            reader,
        })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    pub fn require(&self, key: &str) -> Result<&Value> {
        self.get(key)
            .ok_or_else(|| Error::model(&self.path, format!("missing GGUF metadata key {key}")))
    }

    pub fn string(&self, key: &str) -> Result<String> {
        self.require(key)?
            .to_string()
            .cloned()
            .map_err(|e| Error::model(&self.path, format!("{key}: {e}")))
    }

    pub fn u32(&self, key: &str) -> Result<u32> {
        let v = self.require(key)?;
        v.to_u32()
            .or_else(|_| v.to_u64().map(|x| x as u32))
            .or_else(|_| v.to_i32().map(|x| x as u32))
            .map_err(|e| Error::model(&self.path, format!("{key}: {e}")))
    }

    pub fn f32(&self, key: &str) -> Result<f32> {
        let v = self.require(key)?;
        v.to_f32()
            .or_else(|_| v.to_f64().map(|x| x as f32))
            .map_err(|e| Error::model(&self.path, format!("{key}: {e}")))
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
            .map_err(|e| Error::model(&self.path, format!("tensor {name}: {e}")))
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
