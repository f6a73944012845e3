//! `FieldLocations`: where each field of one loaded document is written, stored compactly enough to keep for
//! every spec of a large repository.

use std::fmt;
use std::sync::Arc;

use super::SourceLocation;

/// Field paths of one document (dotted, as in [`super::Located`]) with where each is written.
///
/// Every spec keeps one for the planner's diagnostics, so at thousands of specs the layout matters: a B-tree of
/// path strings cost an allocation per field and mostly empty nodes, and a full [`SourceLocation`] per field
/// repeated the file name's pointer in every entry. Here all paths sit in one string in sorted order, each entry
/// records where its path ends and its position in 16 bytes, and lookups binary-search the entries.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FieldLocations {
    /// Every path, concatenated in sorted order.
    paths: String,
    /// One per path, in the same order as `paths`.
    entries: Vec<Entry>,
    /// The files entries point into: one for a loaded document.
    files: Vec<Arc<str>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Where the path ends in `paths`; it starts where the previous entry's ends.
    end: u32,
    /// Index into `files`.
    file: u32,
    line: u32,
    column: u32,
}

impl FieldLocations {
    /// The location recorded for exactly `path`.
    pub fn get(&self, path: &str) -> Option<SourceLocation> {
        let mut lo = 0;
        let mut hi = self.entries.len();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.path(mid).cmp(path) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.location(mid)),
            }
        }
        None
    }

    /// How many paths are recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no path is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every path with its location, in sorted path order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, SourceLocation)> + DoubleEndedIterator + '_ {
        (0..self.entries.len()).map(|i| (self.path(i), self.location(i)))
    }

    fn path(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { widen(self.entries[i - 1].end) };
        // Offsets saturate at 4 GiB of paths in one document, far past anything loadable; `get` keeps even
        // that from panicking.
        self.paths.get(start..widen(self.entries[i].end)).unwrap_or_default()
    }

    fn location(&self, i: usize) -> SourceLocation {
        let e = self.entries[i];
        SourceLocation { file: Arc::clone(&self.files[widen(e.file)]), line: widen(e.line), column: widen(e.column) }
    }
}

fn widen(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Offsets, lines and columns past `u32::MAX` (4 GiB into a document) are recorded as `u32::MAX`: a position that
/// far is past anything ldexp loads, and a diagnostic pointing there still names the right file.
fn narrow(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A path given twice keeps its last location, as inserting into a map would.
impl<S: AsRef<str>> FromIterator<(S, SourceLocation)> for FieldLocations {
    fn from_iter<I: IntoIterator<Item = (S, SourceLocation)>>(iter: I) -> Self {
        let mut all: Vec<(S, SourceLocation)> = iter.into_iter().collect();
        // Stable, so that of equal paths the last given stays last.
        all.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut out = FieldLocations {
            paths: String::with_capacity(all.iter().map(|(p, _)| p.as_ref().len()).sum()),
            entries: Vec::with_capacity(all.len()),
            files: Vec::new(),
        };
        // Where the last entry's path starts in `paths`.
        let mut start = 0;
        for (path, location) in all {
            let path = path.as_ref();
            let file = match out.files.iter().position(|f| *f == location.file) {
                Some(i) => i,
                None => {
                    out.files.push(location.file);
                    out.files.len() - 1
                }
            };
            let entry = |end: usize| Entry {
                end: narrow(end),
                file: narrow(file),
                line: narrow(location.line),
                column: narrow(location.column),
            };
            match out.entries.last_mut() {
                Some(last) if &out.paths[start..] == path => *last = entry(out.paths.len()),
                _ => {
                    start = out.paths.len();
                    out.paths.push_str(path);
                    out.entries.push(entry(out.paths.len()));
                }
            }
        }
        out
    }
}

impl fmt::Debug for FieldLocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn at(line: usize) -> SourceLocation {
        SourceLocation { file: "f.yaml".into(), line, column: 1 }
    }

    #[test]
    fn finds_exact_paths_and_keeps_the_last_of_a_repeated_one() {
        let l: FieldLocations =
            [("b", at(1)), ("a.b", at(2)), ("", at(3)), ("a", at(4)), ("b", at(5))].into_iter().collect();
        assert_eq!(l.len(), 4);
        assert_eq!(l.get("b"), Some(at(5)));
        assert_eq!(l.get("a.b"), Some(at(2)));
        assert_eq!(l.get(""), Some(at(3)));
        assert_eq!(l.get("a."), None);
        assert_eq!(l.iter().map(|(p, _)| p).collect::<Vec<_>>(), ["", "a", "a.b", "b"]);
        assert_eq!(format!("{l:?}").matches("line").count(), 4);
        assert!(FieldLocations::default().get("").is_none());
    }

    #[test]
    fn an_entry_stays_16_bytes_and_one_file_is_stored_once() {
        // Every field of every loaded spec has an entry: this size is what a large repository pays per field.
        assert_eq!(std::mem::size_of::<Entry>(), 16);
        let l: FieldLocations = [("a", at(1)), ("b", at(2)), ("c", at(3))].into_iter().collect();
        assert_eq!(l.files.len(), 1);
        let other = SourceLocation { file: "g.yaml".into(), line: 9, column: 4 };
        let l: FieldLocations = [("a", at(1)), ("b", other.clone())].into_iter().collect();
        assert_eq!((l.files.len(), l.get("b")), (2, Some(other)));
    }

    proptest! {
        #[test]
        fn answers_as_a_btree_map_of_the_same_entries_would(
            paths in prop::collection::vec("[ab.\\[0]{0,4}", 0..24),
            probes in prop::collection::vec("[ab.\\[0]{0,4}", 0..8),
        ) {
            let entries: Vec<(String, SourceLocation)> =
                paths.into_iter().enumerate().map(|(i, p)| (p, at(i))).collect();
            let ours: FieldLocations = entries.iter().cloned().collect();
            let map: BTreeMap<String, SourceLocation> = entries.into_iter().collect();
            prop_assert_eq!(ours.len(), map.len());
            prop_assert!(ours.iter().eq(map.iter().map(|(k, v)| (k.as_str(), v.clone()))));
            for p in probes.iter().chain(map.keys()) {
                prop_assert_eq!(ours.get(p), map.get(p).cloned());
            }
        }
    }
}
