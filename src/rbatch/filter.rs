//! Which paths never enter a batch: editor and tool artefacts (by default) and the
//! user's `--exclude`/`--excludei` patterns.
//!
//! The artefact list is deliberately short. Only names that cannot be a user's file are
//! on it; a name that merely might be a temporary (`4913`, `x~`, `#x#`, rsync's
//! `.x.Ab12Cd`) is passed on, because passing on a vanished path costs nothing while
//! dropping a real one loses data. Dotfiles as such are never dropped (`.htaccess` and
//! `.env` must sync), which is the mistake sersync's filter makes.

use crate::sys::regex::PosixRegex;

use super::coalesce::normalize;

/// Why a path was left out (or that it was not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Artefact,
    Excluded,
}

pub struct Filter {
    artefacts: bool,
    excludes: Vec<PosixRegex>,
    /// The path with a NUL appended, reused so matching does not allocate.
    scratch: Vec<u8>,
}

impl Filter {
    /// `artefacts`: drop editor artefacts (off with `--keep-temp`).
    pub fn new(artefacts: bool, excludes: Vec<PosixRegex>) -> Filter {
        Filter {
            artefacts,
            excludes,
            scratch: Vec::with_capacity(4096),
        }
    }

    /// Judges a raw path (`%w%f` as read, before normalising), as rwait's `--exclude`
    /// would see it. `artefact_check` is false for overflow roots, which are never a
    /// temporary whatever their name.
    pub fn check(&mut self, path: &[u8], artefact_check: bool) -> Verdict {
        if self.artefacts && artefact_check && is_artefact(basename(path)) {
            return Verdict::Artefact;
        }
        if !self.excludes.is_empty() {
            self.scratch.clear();
            self.scratch.extend_from_slice(path);
            self.scratch.push(0);
            if self.excludes.iter().any(|re| re.is_match_nul(&self.scratch)) {
                return Verdict::Excluded;
            }
        }
        Verdict::Keep
    }
}

/// The last component of a path, ignoring trailing slashes.
fn basename(path: &[u8]) -> &[u8] {
    let p = normalize(path);
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) if p.len() > 1 => &p[i + 1..],
        _ => p,
    }
}

/// True for names only an editor or tool creates for itself (docs/background.md,
/// "Editor and tool temporaries"), each with a non-empty user part so that `.swp` or `.#` alone stay.
pub fn is_artefact(name: &[u8]) -> bool {
    let between = |prefix: &[u8], suffix: &[u8]| {
        name.len() > prefix.len() + suffix.len() && name.starts_with(prefix) && name.ends_with(suffix)
    };
    // vim: `.x.swp`, then `.x.swo` when that exists, and the `.x.swx` write probe.
    between(b".", b".swp")
        || between(b".", b".swo")
        || between(b".", b".swx")
        // emacs lock link `.#x` (a dangling symlink: syncing it fails loudly).
        || between(b".#", b"")
        // kate
        || between(b".", b".kate-swp")
        // gedit writes `.goutputstream-XXXXXX` and renames it over the file.
        || between(b".goutputstream-", b"")
        // LibreOffice lock file.
        || between(b".~lock.", b"#")
        // JetBrains "safe write".
        || between(b"", b"___jb_tmp___")
        || between(b"", b"___jb_old___")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_artefact_is_dropped() {
        for name in [
            ".x.swp",
            ".x.swo",
            ".x.swx",
            ".bashrc.swp",
            ".#x",
            ".x.kate-swp",
            ".goutputstream-AB12CD",
            ".~lock.x#",
            ".~lock.report.odt#",
            "x___jb_tmp___",
            "x___jb_old___",
        ] {
            assert!(is_artefact(name.as_bytes()), "{name} kept");
        }
    }

    #[test]
    fn names_that_may_be_real_files_are_kept() {
        for name in [
            "4913",
            "x~",
            "#x#",
            ".x.Ab12Cd",
            ".htaccess",
            ".env",
            ".swp",
            ".#",
            "x.swp",
            ".kate-swp",
            "___jb_tmp___",
            ".~lock.#",
            ".goutputstream-",
            "notes.txt",
            ".syncthing.x.tmp",
        ] {
            assert!(!is_artefact(name.as_bytes()), "{name} dropped");
        }
    }

    #[test]
    fn artefact_test_looks_at_the_last_component_only() {
        let mut f = Filter::new(true, vec![]);
        assert_eq!(f.check(b"/src/.#lock/file", true), Verdict::Keep);
        assert_eq!(f.check(b"/src/dir/.file.swp", true), Verdict::Artefact);
        assert_eq!(f.check(b"/src/.x.swp/", true), Verdict::Artefact);
        assert_eq!(f.check(b".x.swp", true), Verdict::Artefact);
        assert_eq!(f.check(b"/src/.x.swp/", false), Verdict::Keep);
        let mut off = Filter::new(false, vec![]);
        assert_eq!(off.check(b"/src/dir/.file.swp", true), Verdict::Keep);
    }

    #[test]
    fn excludes_are_posix_ere_on_the_whole_path() {
        let res = vec![
            PosixRegex::new(br"\.git/", false).unwrap(),
            PosixRegex::new(br"\<CACHE\>", true).unwrap(),
        ];
        let mut f = Filter::new(true, res);
        assert_eq!(f.check(b"/src/.git/index", true), Verdict::Excluded);
        assert_eq!(f.check(b"/src/my cache dir/x", true), Verdict::Excluded);
        assert_eq!(f.check(b"/src/cached", true), Verdict::Keep);
        assert_eq!(f.check(b"/src/\xff.gitx", true), Verdict::Keep);
    }
}
