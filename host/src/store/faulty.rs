//! [`FaultyDisk`]: a redb storage backend over an in-memory image that
//! fails the way disks do, for the store's crash and disk-full tests.
//!
//! It models a disk with a volatile write cache:
//!
//! * a write lands in the cache (reads see it at once) and is durable only
//!   once a later `sync_data` (fsync) returns;
//! * a power cut keeps the durable image plus, independently, each 4 KiB
//!   page of each write since the last sync, kept or dropped at random:
//!   the cache reaches the platter in any order, and not all of it does
//!   ([`FaultyDisk::power_loss`]);
//! * it can fail every call after a number of calls
//!   ([`FaultyDisk::fail_after`]): the cut happens in the middle of
//!   whatever the database was doing, and nothing more reaches the disk;
//! * it can refuse to grow past a size, with `ENOSPC`
//!   ([`FaultyDisk::limit_size`]): a full disk.
//!
//! A `FaultyDisk` is a handle: clones share the disk, so a test keeps one
//! while the store owns another.

use std::io;
use std::sync::Arc;

use crate::sync::Mutex;

/// The granularity at which a power cut keeps or drops cached writes: the
/// atomic write unit of common disks, and redb's page size.
const SECTOR: usize = 4096;

/// A simulated disk with a volatile cache; see the module doc.
#[derive(Clone, Debug, Default)]
pub struct FaultyDisk {
    state: Arc<Mutex<DiskState>>,
}

#[derive(Debug, Default)]
struct DiskState {
    /// What reads see: the durable image with every cached write applied.
    cached: Vec<u8>,
    /// What survives a power cut for certain.
    durable: Vec<u8>,
    /// The writes and resizes since the last sync, oldest first.
    unsynced: Vec<Unsynced>,
    /// Backend calls so far (failed ones included).
    calls: u64,
    /// Calls beyond this many fail with `EIO`.
    fail_after: Option<u64>,
    /// Growing past this many bytes fails with `ENOSPC`.
    size_limit: Option<u64>,
}

/// A change in the cache that a power cut may lose.
#[derive(Debug)]
enum Unsynced {
    Write { offset: usize, data: Vec<u8> },
    SetLen(usize),
}

impl FaultyDisk {
    /// An empty disk with no faults armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A disk holding `image`, all of it durable, with no faults armed:
    /// what a machine finds after the power comes back.
    pub fn from_image(image: Vec<u8>) -> Self {
        let state = DiskState { cached: image.clone(), durable: image, ..DiskState::default() };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    /// Fails every backend call after the next `calls` ones with an I/O
    /// error (counting from now); `None` disarms it.
    pub fn fail_after(&self, calls: Option<u64>) {
        let mut state = self.state.lock();
        state.fail_after = calls.map(|calls| state.calls + calls);
    }

    /// Refuses, with `ENOSPC`, any write or resize that would make the
    /// disk image larger than `bytes`; `None` lifts the limit.
    pub fn limit_size(&self, bytes: Option<u64>) {
        self.state.lock().size_limit = bytes;
    }

    /// The number of backend calls made so far.
    pub fn calls(&self) -> u64 {
        self.state.lock().calls
    }

    /// The current size of the image, cached writes included.
    pub fn size(&self) -> u64 {
        self.state.lock().cached.len() as u64
    }

    /// The image a disk would hold after a power cut now: the durable
    /// image plus, independently and in the order they were written, each
    /// sector of each write (and each resize) since the last sync, kept or
    /// dropped as `rng` decides.
    ///
    /// How likely a change is to be kept is itself drawn for each cut, so
    /// that cuts losing almost nothing and cuts losing almost everything
    /// are both common, not only cuts losing about half.
    pub fn power_loss(&self, rng: &mut fastrand::Rng) -> Vec<u8> {
        let state = self.state.lock();
        let keep_chance = rng.f64();
        let mut kept = || rng.f64() < keep_chance;
        let mut image = state.durable.clone();
        for change in &state.unsynced {
            match change {
                Unsynced::SetLen(len) => {
                    if kept() {
                        image.resize(*len, 0);
                    }
                }
                Unsynced::Write { offset, data } => {
                    // Sector boundaries are absolute, as on a disk: a write
                    // that starts mid-sector tears at the next boundary.
                    let mut start = *offset;
                    let end = offset + data.len();
                    while start < end {
                        let sector_end = ((start / SECTOR) + 1) * SECTOR;
                        let piece_end = sector_end.min(end);
                        if kept() {
                            if image.len() < piece_end {
                                image.resize(piece_end, 0);
                            }
                            image[start..piece_end].copy_from_slice(&data[start - offset..piece_end - offset]);
                        }
                        start = piece_end;
                    }
                }
            }
        }
        image
    }

    /// Counts a call and fails it if the disk has been told to fail by now.
    fn call(state: &mut DiskState) -> io::Result<()> {
        state.calls += 1;
        match state.fail_after {
            Some(limit) if state.calls > limit => Err(io::Error::other("injected I/O fault (the power is cut)")),
            _ => Ok(()),
        }
    }

    /// Fails with `ENOSPC` if the image may not grow to `len` bytes.
    fn check_room(state: &DiskState, len: usize) -> io::Result<()> {
        match state.size_limit {
            Some(limit) if len as u64 > limit && len > state.cached.len() => {
                Err(io::Error::from(io::ErrorKind::StorageFull))
            }
            _ => Ok(()),
        }
    }
}

/// `offset` as an index into the image, or an error past what memory holds.
fn index(offset: u64) -> io::Result<usize> {
    usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

impl ::redb::StorageBackend for FaultyDisk {
    fn len(&self) -> io::Result<u64> {
        let mut state = self.state.lock();
        Self::call(&mut state)?;
        Ok(state.cached.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let mut state = self.state.lock();
        Self::call(&mut state)?;
        let start = index(offset)?;
        let source = start
            .checked_add(out.len())
            .and_then(|end| state.cached.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        out.copy_from_slice(source);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        Self::call(&mut state)?;
        let len = index(len)?;
        Self::check_room(&state, len)?;
        state.cached.resize(len, 0);
        state.unsynced.push(Unsynced::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        Self::call(&mut state)?;
        state.durable = state.cached.clone();
        state.unsynced.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock();
        Self::call(&mut state)?;
        let start = index(offset)?;
        let end = start.checked_add(data.len()).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Self::check_room(&state, end)?;
        if state.cached.len() < end {
            state.cached.resize(end, 0);
        }
        state.cached[start..end].copy_from_slice(data);
        state.unsynced.push(Unsynced::Write { offset: start, data: data.to_vec() });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::redb::StorageBackend;

    #[test]
    fn a_synced_write_survives_every_power_loss() {
        let disk = FaultyDisk::new();
        disk.write(0, &[1; 10]).unwrap();
        disk.sync_data().unwrap();
        for seed in 0..20 {
            assert_eq!(disk.power_loss(&mut fastrand::Rng::with_seed(seed)), [1; 10]);
        }
    }

    #[test]
    fn unsynced_sectors_are_kept_or_dropped_independently() {
        let disk = FaultyDisk::new();
        disk.set_len(2 * SECTOR as u64).unwrap();
        disk.sync_data().unwrap();
        disk.write(0, &[7; 2 * SECTOR]).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let image = disk.power_loss(&mut fastrand::Rng::with_seed(seed));
            assert_eq!(image.len(), 2 * SECTOR);
            assert!(image[..SECTOR].iter().all(|&b| b == image[0]), "a sector is never torn");
            seen.insert((image[0], image[SECTOR]));
        }
        assert_eq!(seen.len(), 4, "both, either or neither sector reached the disk: {seen:?}");
        assert_eq!(disk.size(), 2 * SECTOR as u64, "reads see the cache");
    }

    #[test]
    fn after_the_cut_every_call_fails_and_nothing_more_is_written() {
        let disk = FaultyDisk::new();
        disk.fail_after(Some(1));
        disk.write(0, &[1]).unwrap();
        assert!(disk.write(1, &[2]).is_err());
        assert!(disk.sync_data().is_err());
        assert!(disk.len().is_err());
        let image = disk.power_loss(&mut fastrand::Rng::with_seed(0));
        assert!(matches!(image.as_slice(), [] | [1]), "only the write before the cut may be there: {image:?}");
    }

    #[test]
    fn growing_past_the_size_limit_is_enospc_and_shrinking_is_allowed() {
        let disk = FaultyDisk::new();
        disk.limit_size(Some(100));
        disk.set_len(100).unwrap();
        let error = disk.write(90, &[0; 20]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert_eq!(disk.set_len(101).unwrap_err().kind(), io::ErrorKind::StorageFull);
        disk.write(0, &[1; 100]).unwrap();
        disk.set_len(50).unwrap();
        assert_eq!(disk.len().unwrap(), 50);
    }
}
