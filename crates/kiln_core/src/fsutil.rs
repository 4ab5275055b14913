//! Small filesystem helpers shared by emit and manifest: atomic writes.
//!
//! Every file kiln writes goes to a temporary name in the same folder and is renamed into place,
//! so a reader (a web server, a deploy script) never sees half a file. Renaming is what makes a
//! write atomic for readers; `fsync` only adds durability across a power cut, so it is reserved for
//! the few files whose loss would leave the folder inconsistent (manifests, history).

use std::io::Write;
use std::path::Path;

/// The prefix of kiln's temporary files: whoever holds the output folder's lock may delete
/// any it finds there (a killed build's).
pub(crate) const TEMP_PREFIX: &str = ".kiln-tmp-";

/// Files at least this large that only pass through are never held in memory: discover hashes
/// them as a stream and emit copies them from the source (a 1 GB video costs no RAM).
pub(crate) const LARGE_FILE: u64 = 32 << 20;

/// Writes `bytes` to `path` atomically (temporary file in the same folder, then rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write(path, bytes, false)
}

/// Copies `from` to `to` atomically, checking on the way that the copy's BLAKE3 is `blake3_hex`
/// (the source's at discovery): a file saved again during the build fails the copy instead of
/// publishing bytes that do not match their fingerprint.
pub(crate) fn copy_atomic(from: &Path, to: &Path, blake3_hex: &str) -> std::io::Result<()> {
    let mut tmp = temp_beside(to)?;
    let mut source = std::fs::File::open(from)?;
    std::io::copy(&mut source, tmp.as_file_mut())?;
    let mut copy = std::fs::File::open(tmp.path())?;
    let mut hasher = blake3::Hasher::new();
    std::io::copy(&mut copy, &mut hasher)?;
    if hasher.finalize().to_hex().as_str() != blake3_hex {
        return Err(std::io::Error::other(format!(
            "{} changed while kiln was building; run the build again",
            from.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(to).map_err(|e| e.error)?;
    Ok(())
}

/// Like [`write_atomic`], and flushed to disk before the rename.
pub(crate) fn write_durable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write(path, bytes, true)
}

fn write(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    prepare(path, bytes, durable)?
        .persist(path)
        .map_err(|e| e.error)?;
    Ok(())
}

/// Writes `bytes` durably to a temporary file next to `path`, to be renamed into place by the
/// caller ([`tempfile::NamedTempFile::persist`]); dropped without that, it is deleted. Several
/// files prepared first and renamed after appear together or not at all when a write fails.
pub(crate) fn prepare_durable(
    path: &Path,
    bytes: &[u8],
) -> std::io::Result<tempfile::NamedTempFile> {
    prepare(path, bytes, true)
}

/// A temporary file in `path`'s folder, creating the folder only when it is not there (most
/// are: trying first saves a `mkdir` and a `stat` per file written).
fn temp_beside(path: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = || {
        tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(dir)
    };
    match temp() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            temp()
        }
        other => other,
    }
}

fn prepare(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<tempfile::NamedTempFile> {
    let mut tmp = temp_beside(path)?;
    // Through the File: NamedTempFile's own Write names the temporary path in its errors, which
    // no user needs to see.
    tmp.as_file_mut().write_all(bytes)?;
    // tempfile creates files readable by their owner only; web servers run as another user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    if durable {
        tmp.as_file().sync_data()?;
    }
    Ok(tmp)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_whose_source_changed_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("video.bin");
        std::fs::write(&from, b"first bytes").unwrap();
        let hash = blake3::hash(b"first bytes").to_hex().to_string();
        let out = dir.path().join("out");
        copy_atomic(&from, &out.join("a.bin"), &hash).unwrap();
        assert_eq!(std::fs::read(out.join("a.bin")).unwrap(), b"first bytes");
        // Saved again between discovery and emit.
        std::fs::write(&from, b"other bytes").unwrap();
        let err = copy_atomic(&from, &out.join("b.bin"), &hash).unwrap_err();
        assert!(
            err.to_string().contains("changed while kiln was building"),
            "{err}"
        );
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["a.bin"]);
    }
}
