//! Which devices a run uses: `--devices cpu` (the default), `--devices 0` (CUDA GPU 0) or
//! `--devices 0,1,2,3` (one model replica per GPU). `cpu` may be repeated (`cpu,cpu`), which
//! runs several replicas on the CPU: pointless for speed, but it exercises the data-parallel
//! path on machines without a GPU, so tests can check that the split changes no result.

use crate::{Error, Result};
use candle_core::Device;
use std::fmt;

/// One entry of `--devices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceSpec {
    Cpu,
    /// A CUDA ordinal, as `nvidia-smi` and `CUDA_VISIBLE_DEVICES` number them.
    Cuda(usize),
}

impl DeviceSpec {
    /// Parse a comma-separated list: `cpu`, `0`, `cuda:1`, `0,1`. Duplicated GPUs are
    /// refused: two replicas on one card would only compete for it.
    pub fn parse_list(text: &str) -> Result<Vec<DeviceSpec>> {
        let mut specs = Vec::new();
        for part in text.split(',').map(str::trim) {
            let spec = match part {
                "cpu" => DeviceSpec::Cpu,
                _ => {
                    let ordinal = part.strip_prefix("cuda:").unwrap_or(part);
                    match ordinal.parse::<usize>() {
                        Ok(i) => DeviceSpec::Cuda(i),
                        Err(_) => {
                            return Err(Error::Usage(format!(
                                "--devices: {part:?} is not a device \
                                 (expected cpu, a GPU number such as 0, or cuda:0)"
                            )))
                        }
                    }
                }
            };
            if matches!(spec, DeviceSpec::Cuda(_)) && specs.contains(&spec) {
                return Err(Error::Usage(format!("--devices: {part} is listed twice")));
            }
            specs.push(spec);
        }
        Ok(specs)
    }

    /// Open the device. On a build without the `cuda` feature, a GPU is a clear error rather
    /// than a silent fall-back to the CPU.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(i) => {
                if !cfg!(feature = "cuda") {
                    return Err(Error::Usage(format!(
                        "--devices {i}: this hofbench was built without CUDA; \
                         build it with `bash bench/build-cuda.sh` (or \
                         `cargo build --release --features cuda`)"
                    )));
                }
                Device::new_cuda(i).map_err(|source| Error::Device {
                    device: format!("cuda:{i}"),
                    source,
                })
            }
        }
    }
}

/// The backend a list of devices computes on: `cpu` or `cuda`. A list mixing both is refused:
/// the two round differently, and one run's rows should not depend on which replica took them.
pub fn backend(specs: &[DeviceSpec]) -> Result<&'static str> {
    let name = |s: &DeviceSpec| match s {
        DeviceSpec::Cpu => "cpu",
        DeviceSpec::Cuda(_) => "cuda",
    };
    let first = specs
        .first()
        .map(name)
        .ok_or_else(|| Error::Usage("--devices: no device given".into()))?;
    if specs.iter().any(|s| name(s) != first) {
        return Err(Error::Usage(
            "--devices: a run uses either the CPU or GPUs, not both (their results differ \
             by float rounding)"
                .into(),
        ));
    }
    Ok(first)
}

/// Memory the system can give this process without swapping, in bytes (Linux's
/// `MemAvailable`; None elsewhere).
pub fn host_available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Free memory of a GPU in bytes (None on the CPU, or when the driver cannot say).
pub fn free_memory(device: &Device) -> Option<u64> {
    #[cfg(feature = "cuda")]
    if let Ok(cuda) = device.as_cuda_device() {
        return cuda
            .cuda_stream()
            .context()
            .mem_get_info()
            .ok()
            .map(|(free, _total)| free as u64);
    }
    let _ = device;
    None
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        assert_eq!(
            DeviceSpec::parse_list("cpu").unwrap(),
            vec![DeviceSpec::Cpu]
        );
        assert_eq!(
            DeviceSpec::parse_list("0, cuda:1").unwrap(),
            vec![DeviceSpec::Cuda(0), DeviceSpec::Cuda(1)]
        );
        assert_eq!(
            DeviceSpec::parse_list("cpu,cpu").unwrap(),
            vec![DeviceSpec::Cpu, DeviceSpec::Cpu]
        );
        assert!(DeviceSpec::parse_list("0,0").is_err());
        assert!(DeviceSpec::parse_list("gpu").is_err());
        assert!(DeviceSpec::parse_list("").is_err());
    }

    #[test]
    fn one_backend_per_run() {
        let list = |t| DeviceSpec::parse_list(t).unwrap();
        assert_eq!(backend(&list("cpu,cpu")).unwrap(), "cpu");
        assert_eq!(backend(&list("0,3")).unwrap(), "cuda");
        let err = backend(&list("0,cpu")).unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn gpu_without_cuda_build_is_an_error() {
        let err = DeviceSpec::Cuda(0).open().unwrap_err().to_string();
        assert!(err.contains("without CUDA"), "{err}");
    }
}
