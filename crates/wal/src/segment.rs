//! Segment files on disk: finding them, making a new one atomically, syncing the directory.
//!
//! A new segment is written whole (header and first batch) under a temporary name, synced, renamed
//! to its real name, and then the directory is synced. So a segment with a real name always has a
//! complete header, and a crash leaves at worst a `*.wal.tmp` file, which the next open removes.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use raftwood_fsio::Fs;

use crate::error::{Error, IoContext, Result};
use crate::format::{SegmentHeader, TEMP_SUFFIX, parse_segment_name, segment_name};

/// A segment file found in (or added to) the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentFile {
    /// Sequence number, from the file name.
    pub seq: u64,
    /// First index, from the file name.
    pub first_index: u64,
    /// Full path.
    pub path: PathBuf,
}

/// What a directory holds: segments sorted by sequence number, and leftover temporary files.
pub(crate) struct Listing {
    /// Segments in sequence order, checked to be consecutive.
    pub segments: Vec<SegmentFile>,
    /// `*.wal.tmp` files from an interrupted rotation.
    pub temps: Vec<PathBuf>,
}

/// Lists the directory's segments and temporary files; fails if a sequence number is missing.
pub(crate) fn list(dir: &Path) -> Result<Listing> {
    let mut segments = Vec::new();
    let mut temps = Vec::new();
    for item in fs::read_dir(dir).io(dir, "read directory")? {
        let item = item.io(dir, "read directory")?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TEMP_SUFFIX) {
            temps.push(item.path());
        } else if let Some((seq, first_index)) = parse_segment_name(name) {
            segments.push(SegmentFile {
                seq,
                first_index,
                path: item.path(),
            });
        }
    }
    segments.sort_by_key(|s| s.seq);
    for pair in segments.windows(2) {
        if pair[0].seq.checked_add(1) != Some(pair[1].seq) {
            return Err(Error::MissingSegment {
                path: pair[1].path.clone(),
                previous: pair[0].seq,
                found: pair[1].seq,
            });
        }
    }
    Ok(Listing { segments, temps })
}

/// Makes a new segment: header plus `first_batch` (already encoded, may be empty) under a temporary
/// name, synced, renamed, directory synced. Returns the open file, ready for appending.
///
/// With `fsync` off the syncs are skipped (tests only; see [`crate::Options::fsync`]).
pub(crate) fn create(
    fs: &Fs,
    dir: &Path,
    header: SegmentHeader,
    first_batch: &[u8],
    fsync: bool,
) -> Result<(File, SegmentFile)> {
    let name = segment_name(header.seq, header.first_index);
    let path = dir.join(&name);
    let temp = dir.join(format!("{name}.tmp"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .io(&temp, "create")?;
    let mut bytes = Vec::with_capacity(header.encode().len() + first_batch.len());
    bytes.extend_from_slice(&header.encode());
    bytes.extend_from_slice(first_batch);
    fs.write_all(&mut file, &temp, &bytes).io(&temp, "write")?;
    if fsync {
        fs.sync_all(&file, &temp).io(&temp, "fsync")?;
    }
    fs.rename(&temp, &path).io(&path, "rename")?;
    if fsync {
        sync_dir(fs, dir)?;
    }
    Ok((
        file,
        SegmentFile {
            seq: header.seq,
            first_index: header.first_index,
            path,
        },
    ))
}

/// Creates `dir` and any missing ancestors. With `fsync` on, then syncs the parent of each
/// directory it created, top down: a new directory is an entry in its parent, durable only once
/// the parent is synced, like a new file.
pub(crate) fn create_dir_durably(fs: &Fs, dir: &Path, fsync: bool) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while fs::symlink_metadata(at).is_err() {
        missing.push(at);
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    fs::create_dir_all(dir).io(dir, "create directory")?;
    if fsync {
        for created in missing.iter().rev() {
            let parent = created
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            sync_dir(fs, parent)?;
        }
    }
    Ok(())
}

/// Syncs a directory, making file creations, renames and removals in it durable.
pub(crate) fn sync_dir(fs: &Fs, dir: &Path) -> Result<()> {
    fs.sync_dir(dir).io(dir, "fsync directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_missing_ancestors_and_syncs_their_parents() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/c");
        let fs = Fs::direct();
        create_dir_durably(&fs, &dir, true).unwrap();
        assert!(dir.is_dir());
        // Existing directories are fine too, synced or not.
        create_dir_durably(&fs, &dir, true).unwrap();
        create_dir_durably(&fs, root.path(), false).unwrap();
    }
}
