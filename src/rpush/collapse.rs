//! Turning a host's pending paths into the list one rsync gets.
//!
//! rsync's `--delete-missing-args` deletes a listed path that is gone from the source,
//! but when the path's parent directories are gone too it deletes only the leaf, leaves
//! the parents behind and exits 24 (docs/background.md, rsync; rsync bug 12569). Listing
//! the *topmost* missing directory instead deletes the whole subtree and exits 0. So each
//! missing path is replaced by its topmost missing ancestor below the base. An ancestor
//! that exists but is no longer a directory (a directory replaced by a file) is listed
//! instead, as an update: `--force` lets rsync replace the old directory.
//!
//! Then an ancestor absorbs its descendants: a listed directory is synced recursively
//! (with `--delete` inside it), so its children need no entries of their own.
//!
//! Deletions come first in the list: rsync 3.4.3 aborted with "invalid file mode 00"
//! when a missing entry followed an existing one (RsyncProject/rsync #910).
//!
//! Pure: the file system is seen only through the `stat` function passed in, so the unit
//! tests use a table.

use std::collections::{BTreeSet, HashMap};

/// What a path is on the source, as far as collapsing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    Dir,
    Other,
}

/// The list for one rsync run: relative paths (empty = the base itself), sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub deletions: Vec<Vec<u8>>,
    pub updates: Vec<Vec<u8>>,
}

impl Plan {
    pub fn len(&self) -> usize {
        self.deletions.len() + self.updates.len()
    }

    /// Every entry, deletions first: the order rsync gets them in.
    pub fn entries(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.deletions.iter().chain(self.updates.iter())
    }
}

/// Proper ancestors of a relative path, shortest first (`a/b/c` → `a`, `a/b`).
fn ancestors(p: &[u8]) -> impl Iterator<Item = &[u8]> {
    p.iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'/')
        .map(move |(i, _)| &p[..i])
}

/// Collapses `paths` (relative to the base) into a [`Plan`]; `stat` tells what a relative
/// path is on the source now.
pub fn collapse<'a>(paths: impl IntoIterator<Item = &'a Vec<u8>>, mut stat: impl FnMut(&[u8]) -> Kind) -> Plan {
    let mut cache: HashMap<Vec<u8>, Kind> = HashMap::new();
    let mut kind = |p: &[u8]| -> Kind {
        if p.is_empty() {
            // The base: whether it may be used at all is checked before any run.
            return Kind::Dir;
        }
        if let Some(&k) = cache.get(p) {
            return k;
        }
        let k = stat(p);
        cache.insert(p.to_vec(), k);
        k
    };
    // Entry → is it a deletion.
    let mut chosen: HashMap<Vec<u8>, bool> = HashMap::new();
    for p in paths {
        let mut entry: Option<(&[u8], bool)> = None;
        for a in ancestors(p) {
            match kind(a) {
                Kind::Dir => continue,
                Kind::Missing => entry = Some((a, true)),
                Kind::Other => entry = Some((a, false)),
            }
            break;
        }
        let (e, deleted) = entry.unwrap_or_else(|| (p.as_slice(), kind(p) == Kind::Missing));
        chosen.insert(e.to_vec(), deleted);
    }
    let all: BTreeSet<&Vec<u8>> = chosen.keys().collect();
    let mut plan = Plan::default();
    for p in &all {
        let covered = !p.is_empty() && (all.contains(&Vec::new()) || ancestors(p).any(|a| all.contains(&a.to_vec())));
        if covered {
            continue;
        }
        if chosen[*p] {
            plan.deletions.push((*p).clone());
        } else {
            plan.updates.push((*p).clone());
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake source tree: the listed paths exist (a trailing `/` marks a directory).
    fn fs(entries: &[&str]) -> impl FnMut(&[u8]) -> Kind + use<> {
        let map: HashMap<Vec<u8>, Kind> = entries
            .iter()
            .map(|e| match e.strip_suffix('/') {
                Some(d) => (d.as_bytes().to_vec(), Kind::Dir),
                None => (e.as_bytes().to_vec(), Kind::Other),
            })
            .collect();
        move |p: &[u8]| *map.get(p).unwrap_or(&Kind::Missing)
    }

    fn plan(paths: &[&str], tree: &[&str]) -> (Vec<String>, Vec<String>) {
        let v: Vec<Vec<u8>> = paths.iter().map(|p| p.as_bytes().to_vec()).collect();
        let p = collapse(&v, fs(tree));
        let s = |l: Vec<Vec<u8>>| l.into_iter().map(|x| String::from_utf8(x).unwrap()).collect();
        (s(p.deletions), s(p.updates))
    }

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn deleted_subtree_collapses_to_its_topmost_missing_dir() {
        // p/q/r, p/q and p all gone: only p is listed.
        let (d, u) = plan(&["p/q/r", "p/q", "p", "p/keep"], &["a/", "a/f"]);
        assert_eq!(d, v(&["p"]));
        assert!(u.is_empty());
        // Only the leaf listed, parents gone too: still the topmost one.
        let (d, _) = plan(&["p/q/r"], &["a/"]);
        assert_eq!(d, v(&["p"]));
    }

    #[test]
    fn a_missing_file_in_a_live_dir_stays_a_leaf() {
        let (d, u) = plan(&["a/f2", "a/b/f3"], &["a/", "a/b/", "a/b/f3"]);
        assert_eq!(d, v(&["a/f2"]));
        assert_eq!(u, v(&["a/b/f3"]));
    }

    #[test]
    fn a_listed_directory_absorbs_its_descendants() {
        let (d, u) = plan(&["a/b/f", "a", "a/gone", "c/x"], &["a/", "a/b/", "a/b/f", "c/", "c/x"]);
        assert!(d.is_empty());
        assert_eq!(u, v(&["a", "c/x"]));
        // The base itself absorbs everything.
        let (d, u) = plan(&["", "a/gone", "c/x"], &["a/", "c/", "c/x"]);
        assert!(d.is_empty());
        assert_eq!(u, v(&[""]));
    }

    #[test]
    fn a_dir_replaced_by_a_file_is_listed_as_an_update() {
        let (d, u) = plan(&["a/b/old"], &["a/", "a/b"]);
        assert!(d.is_empty());
        assert_eq!(u, v(&["a/b"]));
    }

    #[test]
    fn deletions_come_first_and_each_list_is_sorted() {
        let v2: Vec<Vec<u8>> = ["z", "y/gone", "b", "a/gone"]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect();
        let p = collapse(&v2, fs(&["z", "b", "a/", "y/"]));
        let order: Vec<&[u8]> = p.entries().map(|e| e.as_slice()).collect();
        assert_eq!(order, vec![&b"a/gone"[..], b"y/gone", b"b", b"z"]);
    }

    #[test]
    fn odd_names_are_just_bytes() {
        let paths = vec![b"-x\n\xff".to_vec(), b"#h/x".to_vec()];
        let p = collapse(
            &paths,
            |p: &[u8]| if p == b"-x\n\xff" { Kind::Other } else { Kind::Missing },
        );
        assert_eq!(p.updates, vec![b"-x\n\xff".to_vec()]);
        assert_eq!(p.deletions, vec![b"#h".to_vec()]);
    }

    #[test]
    fn each_path_is_looked_up_once() {
        let mut calls = 0;
        let paths: Vec<Vec<u8>> = (0..50).map(|i| format!("d/sub/f{i}").into_bytes()).collect();
        let p = collapse(&paths, |_| {
            calls += 1;
            Kind::Missing
        });
        assert_eq!(p.deletions, vec![b"d".to_vec()]);
        assert_eq!(calls, 1);
    }
}
