//! The output folder's advisory lock: two builds (or `kiln watch` and `kiln build`) writing the
//! same output folder take turns instead of interleaving their writes.
//!
//! The lock is the kernel's (`flock` on Unix, `LockFileEx` on Windows, through `std::fs::File`'s
//! locking), on `.kiln-lock` inside the output folder. It is held from the first write of a build
//! (emit) to its last (retiring old builds), so builds still transform in parallel and only their
//! writes are serialised. The kernel releases it when the process dies, even by `kill -9`: a lock
//! left behind by a dead build can never block the next one. The file keeps the holder's PID, only
//! to say whom a waiting build waits for. Taking the lock also clears temporary files that a killed
//! build left in the folder (nobody else can be writing them while we hold it).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use crate::emit::EmitError;
use crate::fsutil::TEMP_PREFIX;

/// The lock file's name inside the output folder.
pub const LOCK_FILE: &str = ".kiln-lock";

/// Holds the output folder's lock until dropped.
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
}

impl OutputLock {
    /// Takes the lock of `out` (created if missing), waiting for another holder to finish; calls
    /// `waiting` once with a message saying for whom, if it has to wait.
    pub fn acquire(out: &Path, waiting: &dyn Fn(&str)) -> Result<OutputLock, EmitError> {
        let path = out.join(LOCK_FILE);
        let err = |source| EmitError {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(out).map_err(|source| EmitError {
            path: out.to_owned(),
            source,
        })?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another kiln process".to_owned()
                } else {
                    format!("another kiln process (pid {holder})")
                };
                waiting(&format!(
                    "waiting for {who} to finish writing {}",
                    out.display()
                ));
                file.lock().map_err(err)?;
            }
            Err(TryLockError::Error(e)) => return Err(err(e)),
        }
        // Best effort: the PID is informative only.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()));
        remove_stale_temporaries(out);
        Ok(OutputLock { _file: file })
    }
}

/// Deletes kiln's temporary files under `out`: with the lock held, any there are a killed
/// build's.
fn remove_stale_temporaries(out: &Path) {
    let stale: Vec<PathBuf> = walkdir::WalkDir::new(out)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_type().is_file()
                && e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(TEMP_PREFIX))
        })
        .map(walkdir::DirEntry::into_path)
        .collect();
    for path in stale {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};

    #[test]
    fn second_holder_waits_and_is_told_for_whom() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let first = OutputLock::acquire(&out, &|_| panic!("nobody holds it yet")).unwrap();
        std::fs::write(out.join(".kiln-tmp-left-over"), b"half").unwrap();
        let (tx, rx) = mpsc::channel();
        let acquired = Arc::new(AtomicBool::new(false));
        let done = acquired.clone();
        let out2 = out.clone();
        let waiter = std::thread::spawn(move || {
            let _second = OutputLock::acquire(&out2, &|m| tx.send(m.to_owned()).unwrap()).unwrap();
            done.store(true, Ordering::SeqCst);
        });
        let message = rx.recv().unwrap();
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(!acquired.load(Ordering::SeqCst));
        drop(first);
        waiter.join().unwrap();
        assert!(acquired.load(Ordering::SeqCst));
        // The holder cleared what a killed build left behind.
        assert!(!out.join(".kiln-tmp-left-over").exists());
    }
}
