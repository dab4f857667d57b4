//! An object cache, as ORC's `ObjectCache`: compiled objects kept across
//! runs, keyed by everything that decides their bytes, so a hit skips the
//! compile.
//!
//! A compile layer asks the cache with a [`CacheKey`] it computes from its
//! input (the module's IR, the target triple, the CPU and its features,
//! the optimization settings, orc's build); on a miss it compiles and
//! hands the object to [`ObjectCache::put`]. The key covers the whole
//! input, so an entry can only be found by a compile that would have made
//! the same object: code embedding process-specific constants (a tier-0
//! body's counter address, say) simply never hits.
//!
//! [`DirectoryCache`] keeps one file per entry in a directory (by default
//! `$XDG_CACHE_HOME/orc/objects`, else `~/.cache/orc/objects`):
//!
//! ```text
//! offset  0  magic  "orc-obj\x01"        (8 bytes; the format version is the last byte)
//!         8  key                          (32 bytes; must equal the file's name)
//!        40  length of the object         (u64, little-endian)
//!        48  SHA-256 of the object        (32 bytes)
//!        80  the object
//! ```
//!
//! Every read checks all of it: a truncated, corrupt or foreign entry (or
//! one of another format version) is removed and reported as a miss, so
//! the object is compiled again; it never reaches the linker. Writes go
//! to a temporary file in the same directory that is renamed over the
//! entry, so concurrent writers (threads or processes) each leave a
//! complete entry and a reader never sees half of one. The directory is
//! bounded in size: after each write, the least recently used entries
//! (by modification time, which a hit refreshes) are removed until the
//! total is under the bound.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// What identifies a compiled object: a SHA-256 over everything that
/// decides its bytes. Build it with [`CacheKey::builder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// A builder hashing the parts of a key, each length-prefixed (so
    /// `("ab", "c")` and `("a", "bc")` differ). Every key starts with
    /// [`build_identity`]: an object compiled by another build of the
    /// program (another compiler, or other post-processing of objects
    /// under the same version number) is never found.
    pub fn builder() -> CacheKeyBuilder {
        CacheKeyBuilder(Sha256::new()).part(build_identity())
    }

    /// The key's bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key in hexadecimal (an entry's file name).
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What identifies this build of the program in cache keys: orc's
/// version and the running executable's path, size and modification time
/// (any rebuild changes them), read once per process.
pub fn build_identity() -> &'static str {
    static IDENTITY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IDENTITY.get_or_init(|| {
        let exe = std::env::current_exe().ok();
        let meta = exe.as_ref().and_then(|e| fs::metadata(e).ok());
        let modified = meta
            .as_ref()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        format!(
            "orc {} {} {} {modified}",
            env!("CARGO_PKG_VERSION"),
            exe.map(|e| e.display().to_string()).unwrap_or_default(),
            meta.map_or(0, |m| m.len()),
        )
    })
}

/// Hashes the parts of a [`CacheKey`].
#[derive(Clone)]
pub struct CacheKeyBuilder(Sha256);

impl CacheKeyBuilder {
    /// Adds a part.
    pub fn part(mut self, bytes: impl AsRef<[u8]>) -> Self {
        let bytes = bytes.as_ref();
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// The key.
    pub fn finish(self) -> CacheKey {
        CacheKey(self.0.finalize().into())
    }
}

impl std::fmt::Debug for CacheKeyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKeyBuilder")
    }
}

/// Compiled objects kept by key (see the module docs). Implementations
/// must be safe to call from any thread; a failure to read or write is a
/// miss, never an error of the compile.
pub trait ObjectCache: Send + Sync + std::fmt::Debug {
    /// The object stored under `key`, if there is a sound one.
    fn get(&self, key: &CacheKey) -> Option<Vec<u8>>;

    /// Stores `object` under `key`.
    fn put(&self, key: &CacheKey, object: &[u8]);
}

/// What a [`DirectoryCache`] has done since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found a sound entry.
    pub hits: u64,
    /// Lookups that found nothing (or a bad entry).
    pub misses: u64,
    /// Entries found damaged (truncated, corrupt, foreign) and removed.
    pub rejected: u64,
    /// Entries written.
    pub stored: u64,
    /// Entries removed to keep the directory under its size bound.
    pub evicted: u64,
}

const MAGIC: &[u8; 8] = b"orc-obj\x01";
const HEADER: usize = 80;

/// The default bound of a [`DirectoryCache`]: 512 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 512 << 20;

/// An [`ObjectCache`] in a directory, one file per entry, bounded in size
/// (see the module docs).
#[derive(Debug)]
pub struct DirectoryCache {
    dir: PathBuf,
    max_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    rejected: AtomicU64,
    stored: AtomicU64,
    evicted: AtomicU64,
}

/// The file beside the entries that holds their total size, so that a
/// store need not list and `stat` every entry to know whether to evict:
/// with 58,000 tier-0 objects that took half a second per compile, and a
/// lazily compiled program seemed to hang. It is updated after each store
/// without a lock, so a store racing another's can lose the other's
/// addition and the figure runs low (the directory then passes the bound
/// by as much before a scan); a full scan sets it right whenever the
/// figure passes the bound, every [`RESCAN_STORES`] stores of a process,
/// and when the file is missing or unreadable.
const SIZE_FILE: &str = "size";

/// See [`SIZE_FILE`].
const RESCAN_STORES: u64 = 256;

impl DirectoryCache {
    /// A cache in `dir` (created if missing) holding at most `max_bytes`.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> std::io::Result<DirectoryCache> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(DirectoryCache {
            dir,
            max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        })
    }

    /// The user's cache directory for orc's objects:
    /// `$XDG_CACHE_HOME/orc/objects`, else `$HOME/.cache/orc/objects`;
    /// `None` when neither variable is set.
    pub fn default_dir() -> Option<PathBuf> {
        let base = match std::env::var_os("XDG_CACHE_HOME") {
            Some(x) if !x.is_empty() && Path::new(&x).is_absolute() => PathBuf::from(x),
            _ => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?).join(".cache"),
        };
        Some(base.join("orc").join("objects"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What this cache has done so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    /// The file of `key`'s entry.
    pub fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.obj", key.hex()))
    }

    /// The object in `data` if it is a sound entry for `key`.
    fn decode(key: &CacheKey, data: &[u8]) -> Option<Vec<u8>> {
        if data.len() < HEADER || &data[..8] != MAGIC || data[8..40] != key.0 {
            return None;
        }
        let len = u64::from_le_bytes(data[40..48].try_into().ok()?);
        let object = &data[HEADER..];
        if object.len() as u64 != len || Sha256::digest(object)[..] != data[48..80] {
            return None;
        }
        Some(object.to_vec())
    }

    /// Removes the least recently used entries until the directory holds
    /// at most the bound.
    fn evict(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "obj"))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        if total > self.max_bytes {
            files.sort();
            for (_, len, path) in files {
                if total <= self.max_bytes {
                    break;
                }
                if fs::remove_file(&path).is_ok() {
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
                total = total.saturating_sub(len);
            }
        }
        self.write_size(total);
    }

    /// After storing an entry of `bytes`: adds them to the size file, or
    /// scans (and evicts) when that is due (see [`SIZE_FILE`]).
    fn stored_bytes(&self, bytes: u64) {
        let stores = self.stored.load(Ordering::Relaxed);
        match self.read_size() {
            Some(total)
                if stores % RESCAN_STORES != 0 && total.saturating_add(bytes) <= self.max_bytes =>
            {
                self.write_size(total + bytes)
            }
            _ => self.evict(),
        }
    }

    fn read_size(&self) -> Option<u64> {
        fs::read_to_string(self.dir.join(SIZE_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Replaces the size file at once (a reader sees the old figure or the
    /// new one).
    fn write_size(&self, total: u64) {
        let tmp = self.temp_path("size");
        if fs::write(&tmp, total.to_string()).is_err()
            || fs::rename(&tmp, self.dir.join(SIZE_FILE)).is_err()
        {
            let _ = fs::remove_file(&tmp);
        }
    }

    /// A file name of this process's, for writing before a rename.
    fn temp_path(&self, what: &str) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        self.dir.join(format!(
            ".{what}.{}.{}.tmp",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

impl ObjectCache for DirectoryCache {
    fn get(&self, key: &CacheKey) -> Option<Vec<u8>> {
        let path = self.entry_path(key);
        let found = match fs::read(&path) {
            Ok(data) => match Self::decode(key, &data) {
                Some(object) => {
                    // A hit makes the entry the most recently used.
                    if let Ok(f) = fs::File::options().append(true).open(&path) {
                        let _ = f.set_modified(SystemTime::now());
                    }
                    Some(object)
                }
                None => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    let _ = fs::remove_file(&path);
                    None
                }
            },
            Err(_) => None,
        };
        match &found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        found
    }

    fn put(&self, key: &CacheKey, object: &[u8]) {
        if (HEADER + object.len()) as u64 > self.max_bytes {
            return;
        }
        let tmp = self.temp_path(&key.hex());
        let written = (|| -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            let mut header = Vec::with_capacity(HEADER);
            header.extend_from_slice(MAGIC);
            header.extend_from_slice(&key.0);
            header.extend_from_slice(&(object.len() as u64).to_le_bytes());
            header.extend_from_slice(&Sha256::digest(object));
            f.write_all(&header)?;
            f.write_all(object)?;
            drop(f);
            fs::rename(&tmp, self.entry_path(key))
        })();
        match written {
            Ok(()) => {
                self.stored.fetch_add(1, Ordering::Relaxed);
                self.stored_bytes((HEADER + object.len()) as u64);
            }
            Err(_) => {
                let _ = fs::remove_file(&tmp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("orc-cache-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn key(s: &str) -> CacheKey {
        CacheKey::builder().part(s).finish()
    }

    #[test]
    fn keys_are_length_prefixed() {
        let a = CacheKey::builder().part("ab").part("c").finish();
        let b = CacheKey::builder().part("a").part("bc").finish();
        assert_ne!(a, b);
        assert_eq!(a, CacheKey::builder().part("ab").part("c").finish());
        assert_eq!(a.hex().len(), 64);
    }

    #[test]
    fn a_stored_object_is_found_and_others_are_misses() {
        let dir = temp_dir("hit");
        let cache = DirectoryCache::open(&dir, DEFAULT_CACHE_BYTES).unwrap();
        assert_eq!(cache.get(&key("a")), None);
        cache.put(&key("a"), b"object a");
        assert_eq!(cache.get(&key("a")).as_deref(), Some(&b"object a"[..]));
        assert_eq!(cache.get(&key("b")), None);
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.stored), (1, 2, 1));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn damaged_entries_are_rejected_and_removed() {
        let dir = temp_dir("damaged");
        let cache = DirectoryCache::open(&dir, DEFAULT_CACHE_BYTES).unwrap();
        let k = key("k");
        let path = cache.entry_path(&k);
        type Damage<'a> = &'a dyn Fn(&mut Vec<u8>);
        let damage: [Damage; 5] = [
            &|d| d.truncate(d.len() - 1),     // truncated
            &|d| *d.last_mut().unwrap() ^= 1, // corrupt object
            &|d| d[9] ^= 1,                   // another key's entry
            &|d| d[7] = 2,                    // another format version
            &|d| d.truncate(10),              // a torn header
        ];
        for (i, damage) in damage.iter().enumerate() {
            cache.put(&k, b"the object bytes");
            let mut data = fs::read(&path).unwrap();
            damage(&mut data);
            fs::write(&path, &data).unwrap();
            assert_eq!(cache.get(&k), None, "damage {i}");
            assert!(!path.exists(), "damage {i}: the entry is removed");
        }
        assert_eq!(cache.stats().rejected, 5);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_least_recently_used_entries_go_first() {
        let dir = temp_dir("lru");
        let object = vec![7u8; 1000];
        // Room for three entries.
        let cache = DirectoryCache::open(&dir, 3 * (HEADER as u64 + 1000)).unwrap();
        let t0 = SystemTime::now() - std::time::Duration::from_secs(100);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            cache.put(&key(name), &object);
            let f = fs::File::options()
                .append(true)
                .open(cache.entry_path(&key(name)))
                .unwrap();
            f.set_modified(t0 + std::time::Duration::from_secs(i as u64))
                .unwrap();
        }
        // Using "a" makes "b" the least recently used.
        assert!(cache.get(&key("a")).is_some());
        cache.put(&key("d"), &object);
        assert!(cache.get(&key("b")).is_none(), "b was evicted");
        for name in ["a", "c", "d"] {
            assert!(cache.get(&key(name)).is_some(), "{name} stays");
        }
        assert_eq!(cache.stats().evicted, 1);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn stores_keep_the_size_file_and_a_wrong_figure_is_set_right_by_a_scan() {
        let dir = temp_dir("size");
        let entry = HEADER as u64 + 100;
        // Room for four entries.
        let cache = DirectoryCache::open(&dir, 4 * entry).unwrap();
        for name in ["a", "b", "c"] {
            cache.put(&key(name), &[1u8; 100]);
        }
        // The first store scanned (no size file yet); the others added.
        assert_eq!(cache.read_size(), Some(3 * entry));
        // A figure that says the bound is passed makes the next store scan,
        // which finds four entries, within the bound: nothing is evicted.
        cache.write_size(1 << 40);
        cache.put(&key("d"), &[1u8; 100]);
        assert_eq!(cache.read_size(), Some(4 * entry));
        assert_eq!(cache.stats().evicted, 0);
        // One that runs low (stores of other processes lost) lets the
        // directory pass the bound by as much, until the figure does.
        cache.write_size(0);
        for i in 0..4 {
            cache.put(&key(&format!("k{i}")), &[1u8; 100]);
        }
        let entries = || {
            fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "obj"))
                .count() as u64
        };
        assert_eq!(entries(), 8);
        cache.put(&key("last"), &[1u8; 100]);
        assert_eq!(entries(), 4);
        assert_eq!(cache.read_size(), Some(4 * entry));
        let _ = fs::remove_dir_all(&dir);
    }
}
