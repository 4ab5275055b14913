//! Gives the memory a large image's codecs freed back to the operating system.
//!
//! glibc's allocator keeps freed memory in its arenas for reuse, and after it has seen a few large
//! buffers it stops mapping them separately, so the hundreds of MiB an AVIF encode of a big photo
//! allocates stay resident after the encode ends: the process then peaks at that plus whatever
//! runs next. `malloc_trim` returns the free pages of every arena (measured on the benchmark
//! corpus in docs/benchmarks.md).
#![allow(unsafe_code)]

/// Returns free heap memory to the OS (glibc only; elsewhere a no-op).
pub(crate) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only releases memory that is already free.
    unsafe {
        libc::malloc_trim(0);
    }
}
