//! Replacing a file whole: rpush's `--status` document and its journals' compaction.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replaces `path` with `data` so that a reader, and the file after a crash, sees the
/// old content or the new, whole: written beside it (`.NAME.tmpPID`, created with
/// `mode` less the umask, removed on failure), fsync'd, renamed over `path`; with
/// `sync_dir` the directory is fsync'd too, so the rename itself survives a crash.
pub fn replace_file(path: &Path, data: &[u8], mode: u32, sync_dir: bool) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| io::Error::other("not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    if sync_dir {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_whole_with_its_mode_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("status.json");
        replace_file(&p, b"one", 0o600, false).unwrap();
        replace_file(&p, b"two", 0o600, true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_replacement_keeps_the_old_file_and_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("target");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("inside"), b"x").unwrap();
        // Renaming a file over a non-empty directory fails (EISDIR).
        assert!(replace_file(&p, b"new", 0o644, true).is_err());
        assert!(p.join("inside").exists());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(replace_file(&d.path().join("missing/x"), b"new", 0o644, false).is_err());
    }
}
