//! The process's allocator policy: keep freed memory for the next tensor.
//!
//! candle allocates a fresh buffer for every op's output. glibc's defaults hand large freed
//! blocks back to the kernel (munmap, heap trimming), so the next pass's tensors of the same
//! sizes fault their pages in and have them zeroed again: on SmolLM2's prefill that kernel
//! work was ~15% of the time (perf: page faults, clear_page, memcg accounting). Serving
//! blocks up to 32 MiB (glibc's largest allowed mmap threshold) from the heap and never
//! trimming it reuses them instead. Peak memory is unchanged: what is kept is memory the
//! process already held at its peak.

/// Set the allocator policy; call once, first thing in `main`, before any thread starts.
/// Only glibc has these knobs; elsewhere this does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's thresholds; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
