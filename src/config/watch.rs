//! Following the configuration's files, so that a changed ConfigMap or Secret is applied without
//! a signal. [`Watch`] holds inotify watches on the directories that hold the configuration file
//! and the files it names (the directories, not the files: a `..data` symlink swap, an editor's
//! rename-over and an in-place write all show there), its descriptor one more source of the
//! supervisor's `mio::Poll`; where inotify cannot be had, it compares the files' contents every
//! `watch_interval` instead. A change waits `watch_debounce` for the rest of a swap, then
//! [`Watch::due`] hands on the files as they are, when their [`Snapshot`] (a SHA-256 of each)
//! differs from the last load's.
//!
//! It reads files and says when; loading and applying a configuration is the supervisor's (see
//! `serve::supervisor`), and which files a configuration names is the loader's (`Config::files`).

use std::collections::{BTreeSet, HashMap};
use std::io::{self, ErrorKind};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use sha2::{Digest, Sha256};

/// A file that vanished since the last load and is still missing this many debounces after it was
/// found so is taken as gone (the reload that follows is refused for it); until then it is taken
/// as a swap under way. A bound, not a quiet time: events go on (a neighbour's log, every poll of
/// a change not yet loaded), and a wait they could extend might never end.
const VANISHED_DEBOUNCES: u32 = 3;
/// Changes that never pause for a debounce are applied this many debounces after the first.
const MAX_DEBOUNCES: u32 = 4;
/// Room for many events per read: each is 16 bytes and a name of at most 255.
const EVENT_BUFFER: usize = 16 * 1024;

/// What is seen in a watched directory: an entry created, deleted, written, renamed or changed in
/// its metadata (a `touch`), and the directory itself deleted or moved.
fn mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MODIFY
        | WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::ATTRIB
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
}

/// How often the files are compared when they are polled.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(5);
/// Long enough for a kubelet's or an editor's swap to finish, short enough not to be waited for.
pub const DEFAULT_WATCH_DEBOUNCE: Duration = Duration::from_millis(500);

/// `watch`, `watch_interval`, `watch_debounce` and `watch_poll`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchOptions {
    /// Whether the files are followed at all (`--watch`).
    pub enabled: bool,
    /// How often the files are compared when inotify cannot be had (or `poll` asks for it).
    pub interval: Duration,
    /// How long a change waits for the rest of a swap.
    pub debounce: Duration,
    /// Compare every `interval` even where inotify works (file systems whose changes inotify
    /// does not see, such as network mounts).
    pub poll: bool,
}

impl Default for WatchOptions {
    fn default() -> WatchOptions {
        WatchOptions {
            enabled: false,
            interval: DEFAULT_WATCH_INTERVAL,
            debounce: DEFAULT_WATCH_DEBOUNCE,
            poll: false,
        }
    }
}

/// What each file held when it was read: a SHA-256 of its contents, `None` when it could not be
/// read. A directory's contents are its regular files (symbolic links followed), by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    files: Vec<(PathBuf, Option<[u8; 32]>)>,
}

impl Snapshot {
    pub fn take(paths: &[PathBuf]) -> Snapshot {
        Snapshot::default().extended(paths)
    }

    /// `paths`, in that order, as this snapshot holds them; the ones it lacks read now.
    pub fn extended(&self, paths: &[PathBuf]) -> Snapshot {
        let files = paths
            .iter()
            .map(|path| match self.get(path) {
                Some(held) => (path.clone(), held),
                None => (path.clone(), digest(path)),
            })
            .collect();
        Snapshot { files }
    }

    fn get(&self, path: &Path) -> Option<Option<[u8; 32]>> {
        self.files
            .iter()
            .find_map(|(p, hash)| (p == path).then_some(*hash))
    }

    /// The files whose contents differ from what `earlier` held (or that it did not have).
    pub fn changed_since(&self, earlier: &Snapshot) -> Vec<PathBuf> {
        self.files
            .iter()
            .filter(|(path, hash)| earlier.get(path) != Some(*hash))
            .map(|(path, _)| path.clone())
            .collect()
    }

    /// Whether a file could not be read.
    #[cfg(test)]
    fn missing(&self) -> bool {
        self.files.iter().any(|(_, hash)| hash.is_none())
    }

    /// Whether a file that `earlier` could read (or did not hold) cannot be read now. One that
    /// was missing then too is no swap under way: waiting for it would only delay the rest.
    fn vanished_since(&self, earlier: &Snapshot) -> bool {
        self.files
            .iter()
            .any(|(path, hash)| hash.is_none() && earlier.get(path) != Some(None))
    }

    /// One hash of every file's path and contents, in order, as lowercase hex.
    pub fn sha256(&self) -> String {
        let mut all = Sha256::new();
        for (path, hash) in &self.files {
            all.update(path.as_os_str().as_bytes());
            match hash {
                Some(hash) => {
                    all.update([1]);
                    all.update(hash);
                }
                None => all.update([0]),
            }
        }
        all.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The SHA-256 of a file's contents, or of a directory's regular files' names and digests.
fn digest(path: &Path) -> Option<[u8; 32]> {
    if !std::fs::metadata(path).ok()?.is_dir() {
        return super::files::read(path)
            .ok()
            .map(|bytes| Sha256::digest(bytes).into());
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    let mut all = Sha256::new();
    for name in names {
        all.update(name.file_name()?.as_bytes());
        all.update([0]);
        all.update(Sha256::digest(super::files::read(&name).ok()?));
    }
    Some(all.finalize().into())
}

/// A change seen and not yet handed on.
#[derive(Debug, Clone, Copy)]
struct Pending {
    first: Instant,
    last: Instant,
    /// When a file was first found vanished at the end of a debounce.
    vanished: Option<Instant>,
}

pub struct Watch {
    options: WatchOptions,
    files: Vec<PathBuf>,
    /// The files as the last load read them, applied or refused: a refused configuration is
    /// tried again when a file changes again, not at every event (its own refusal's log line may
    /// be written into a watched directory).
    baseline: Snapshot,
    way: Way,
    pending: Option<Pending>,
}

enum Way {
    Notify(Notify),
    Poll { next: Instant },
}

/// The inotify descriptor, registered with the supervisor's poll, and what it watches.
struct Notify {
    inotify: Inotify,
    registry: Registry,
    /// Each watched directory and its watch.
    dirs: HashMap<PathBuf, WatchDescriptor>,
    buffer: Box<[u8]>,
}

impl Notify {
    fn new(registry: &Registry, token: Token) -> io::Result<Notify> {
        let inotify = Inotify::init()?;
        let registry = registry.try_clone()?;
        registry.register(
            &mut SourceFd(&inotify.as_raw_fd()),
            token,
            Interest::READABLE,
        )?;
        Ok(Notify {
            inotify,
            registry,
            dirs: HashMap::new(),
            buffer: vec![0; EVENT_BUFFER].into_boxed_slice(),
        })
    }

    /// Watches `dirs` (each missing one's nearest existing ancestor, so that its return is seen)
    /// and drops the watches no longer needed. A watch that the kernel refuses for another
    /// reason than a missing directory (no watches left, a file system without inotify) is an
    /// error: the caller falls back to polling.
    fn arm(&mut self, dirs: &BTreeSet<PathBuf>) -> io::Result<()> {
        let mut wanted = BTreeSet::new();
        for dir in dirs {
            let mut at = Some(dir.as_path());
            while let Some(path) = at {
                let path = if path.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    path
                };
                match self.inotify.watches().add(path, mask()) {
                    Ok(wd) => {
                        // A directory renamed away keeps its watch wherever it went: each
                        // swap by rename would leave one more behind.
                        if let Some(old) = self.dirs.insert(path.to_path_buf(), wd.clone()) {
                            if old != wd {
                                self.forget(old);
                            }
                        }
                        wanted.insert(path.to_path_buf());
                        break;
                    }
                    Err(e) if gone(&e) => at = path.parent(),
                    Err(e) => return Err(e),
                }
            }
        }
        let unwanted: Vec<PathBuf> = self
            .dirs
            .keys()
            .filter(|dir| !wanted.contains(*dir))
            .cloned()
            .collect();
        for dir in unwanted {
            if let Some(wd) = self.dirs.remove(&dir) {
                self.forget(wd);
            }
        }
        Ok(())
    }

    /// Removes `wd` from inotify once no path holds it.
    fn forget(&mut self, wd: WatchDescriptor) {
        // Two paths to one directory share its watch: keep it while one is wanted.
        if !self.dirs.values().any(|other| *other == wd) {
            // Already gone with its directory is fine.
            let _ = self.inotify.watches().remove(wd);
        }
    }

    /// Reads every queued event (the registration is edge-triggered). Returns whether any came,
    /// and whether a watch was dropped (its directory deleted or moved) or events were lost, so
    /// that the watches must be armed again.
    fn drain(&mut self) -> io::Result<(bool, bool)> {
        let (mut seen, mut lost) = (false, false);
        loop {
            let events = match self.inotify.read_events(&mut self.buffer) {
                Ok(events) => events,
                // Drained: the next event is a new edge.
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok((seen, lost)),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for event in events {
                seen = true;
                if event.mask.contains(EventMask::MOVE_SELF) {
                    // The watch went with the directory to its new name, which nothing
                    // follows; the caller watches what its paths hold now.
                    self.dirs.retain(|_, wd| *wd != event.wd);
                    let _ = self.inotify.watches().remove(event.wd.clone());
                    lost = true;
                }
                if event
                    .mask
                    .intersects(EventMask::IGNORED | EventMask::Q_OVERFLOW)
                {
                    // The directory went (or events were dropped): what it held is compared at
                    // the debounce's end, and the watches are set again now.
                    self.dirs.retain(|_, wd| *wd != event.wd);
                    lost = true;
                }
            }
        }
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        let _ = self
            .registry
            .deregister(&mut SourceFd(&self.inotify.as_raw_fd()));
    }
}

/// Errors of a watch on a path that is not (or no longer) a directory.
fn gone(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// The directories to watch for `files`: each one's parent, and the parent of the file it
/// resolves to (an in-place write through a symbolic link shows there); a directory itself too.
fn directories(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut dirs = BTreeSet::new();
    for file in files {
        let resolved = std::fs::canonicalize(file).ok();
        for path in std::iter::once(file.as_path()).chain(resolved.as_deref()) {
            if let Some(parent) = path.parent() {
                dirs.insert(parent.to_path_buf());
            }
            if path.is_dir() {
                dirs.insert(path.to_path_buf());
            }
        }
    }
    dirs
}

impl Watch {
    /// Follows `files`, which `baseline` holds as loaded: through inotify on `registry` under
    /// `token`, else (asked for, or inotify refused, which is logged at warn) by polling.
    pub fn new(
        registry: &Registry,
        token: Token,
        files: Vec<PathBuf>,
        baseline: Snapshot,
        options: WatchOptions,
        now: Instant,
    ) -> Watch {
        let way = if options.poll {
            Way::Poll {
                next: now + options.interval,
            }
        } else {
            match Notify::new(registry, token) {
                Ok(notify) => Way::Notify(notify),
                Err(e) => {
                    warn_polling(&e, options.interval);
                    Way::Poll {
                        next: now + options.interval,
                    }
                }
            }
        };
        let mut watch = Watch {
            options,
            files,
            baseline,
            way,
            pending: None,
        };
        watch.arm(now);
        watch.catch_up(now);
        let names: Vec<String> = watch
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        tracing::info!(
            files = names.join(", "),
            by = if watch.polling() {
                "polling"
            } else {
                "inotify"
            },
            interval_s = options.interval.as_secs_f64(),
            debounce_s = options.debounce.as_secs_f64(),
            "watching the configuration's files"
        );
        watch
    }

    /// Whether the files are compared every interval rather than followed through inotify.
    pub fn polling(&self) -> bool {
        matches!(self.way, Way::Poll { .. })
    }

    /// Sets the watches for the files; on an error, falls back to polling.
    fn arm(&mut self, now: Instant) {
        let Way::Notify(notify) = &mut self.way else {
            return;
        };
        if let Err(e) = notify.arm(&directories(&self.files)) {
            self.fall_back(&e, now);
        }
    }

    fn fall_back(&mut self, e: &io::Error, now: Instant) {
        warn_polling(e, self.options.interval);
        self.way = Way::Poll {
            next: now + self.options.interval,
        };
    }

    /// The inotify descriptor is readable: takes in what it reports.
    pub fn on_readable(&mut self, now: Instant) {
        let Way::Notify(notify) = &mut self.way else {
            return;
        };
        match notify.drain() {
            Ok((seen, lost)) => {
                if seen {
                    self.note(now);
                }
                if lost {
                    self.arm(now);
                }
            }
            Err(e) => {
                self.fall_back(&e, now);
                self.note(now);
            }
        }
    }

    fn note(&mut self, now: Instant) {
        self.pending = Some(match self.pending {
            Some(pending) => Pending {
                last: now,
                ..pending
            },
            None => Pending {
                first: now,
                last: now,
                vanished: None,
            },
        });
    }

    /// When [`Watch::due`] must be called next.
    pub fn deadline(&self) -> Option<Instant> {
        let poll = match self.way {
            Way::Poll { next } => Some(next),
            Way::Notify(_) => None,
        };
        let settled = self.pending.map(|pending| self.settles(pending));
        poll.into_iter().chain(settled).min()
    }

    /// A change settles a debounce after the last event; a stream of them, `MAX_DEBOUNCES`
    /// after the first; a vanished file, a debounce after the last event, and at the latest
    /// `VANISHED_DEBOUNCES` after it was found vanished.
    fn settles(&self, pending: Pending) -> Instant {
        let quiet = pending.last + self.options.debounce;
        let latest = match pending.vanished {
            None => pending.first + self.options.debounce * MAX_DEBOUNCES,
            Some(since) => since + self.options.debounce * VANISHED_DEBOUNCES,
        };
        quiet.min(latest)
    }

    /// The files as they are, once a change has settled and no file has vanished since the last
    /// load (or one has been missing for `VANISHED_DEBOUNCES`); `None` before that, and when they
    /// hold what the last load read.
    pub fn due(&mut self, now: Instant) -> Option<Snapshot> {
        if matches!(self.way, Way::Poll { next } if next <= now) {
            self.way = Way::Poll {
                next: now + self.options.interval,
            };
            self.catch_up(now);
        }
        self.settle(now)
    }

    /// The pending change, if it has settled.
    fn settle(&mut self, now: Instant) -> Option<Snapshot> {
        let pending = self.pending?;
        if self.settles(pending) > now {
            return None;
        }
        // A swap may have replaced a watched directory: watch what is there now.
        self.arm(now);
        let snapshot = Snapshot::take(&self.files);
        if snapshot.vanished_since(&self.baseline) {
            let since = pending.vanished.unwrap_or(now);
            if now < since + self.options.debounce * VANISHED_DEBOUNCES {
                self.pending = Some(Pending {
                    last: now,
                    vanished: Some(since),
                    ..pending
                });
                return None;
            }
        }
        self.pending = None;
        let changed = !snapshot.changed_since(&self.baseline).is_empty();
        changed.then_some(snapshot)
    }

    /// After a load, applied or refused: follows `files`, as `snapshot` holds them.
    pub fn follow(&mut self, files: Vec<PathBuf>, snapshot: Snapshot, now: Instant) {
        self.files = files;
        self.baseline = snapshot;
        self.arm(now);
        self.catch_up(now);
    }

    /// A change made after the baseline was read and before a directory was watched has no
    /// event: compare once the watches are set.
    fn catch_up(&mut self, now: Instant) {
        if !Snapshot::take(&self.files)
            .changed_since(&self.baseline)
            .is_empty()
        {
            self.note(now);
        }
    }
}

fn warn_polling(e: &io::Error, interval: Duration) {
    tracing::warn!(
        error = %e,
        interval_s = interval.as_secs_f64(),
        "cannot watch the configuration's files with inotify; comparing them every watch_interval"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    const TOKEN: Token = Token(7);
    const LIMIT: Duration = Duration::from_secs(5);

    fn options(poll: bool) -> WatchOptions {
        WatchOptions {
            enabled: true,
            interval: Duration::from_millis(50),
            debounce: Duration::from_millis(100),
            poll,
        }
    }

    /// A watch on `files` and the poll it is registered with.
    fn watching(files: &[PathBuf], poll: bool) -> (Poll, Watch) {
        let p = Poll::new().unwrap();
        let watch = Watch::new(
            p.registry(),
            TOKEN,
            files.to_vec(),
            Snapshot::take(files),
            options(poll),
            Instant::now(),
        );
        (p, watch)
    }

    /// A directory holding `name` with `text` in it, and a watch on that file alone.
    fn one_file(name: &str, text: &str, poll: bool) -> (tempfile::TempDir, PathBuf, Poll, Watch) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let (p, watch) = watching(std::slice::from_ref(&file), poll);
        (dir, file, p, watch)
    }

    /// Runs the poll as the supervisor does until the watch hands on a change, or `limit`.
    /// What a change handed on holds: the files as they are, and which of them changed.
    struct Change {
        snapshot: Snapshot,
        changed: Vec<PathBuf>,
    }

    fn next_change(poll: &mut Poll, watch: &mut Watch, limit: Duration) -> Option<Change> {
        let end = Instant::now() + limit;
        let mut events = Events::with_capacity(4);
        while Instant::now() < end {
            let timeout = watch
                .deadline()
                .map_or(end, |at| at.min(end))
                .saturating_duration_since(Instant::now());
            poll.poll(&mut events, Some(timeout)).unwrap();
            let now = Instant::now();
            if events.iter().any(|e| e.token() == TOKEN) {
                watch.on_readable(now);
            }
            if let Some(snapshot) = watch.due(now) {
                let changed = snapshot.changed_since(&watch.baseline);
                return Some(Change { snapshot, changed });
            }
        }
        None
    }

    /// Sets a ConfigMap volume's `..data` to a new timestamped directory holding `files`, as the
    /// kubelet does: a new directory, a link to it renamed over `..data`, the old one removed.
    fn swap(mount: &Path, serial: u32, files: &[(&str, &str)]) {
        let dir = format!("..2026_12_02_10_00_00.{serial}");
        std::fs::create_dir(mount.join(&dir)).unwrap();
        for (name, text) in files {
            std::fs::write(mount.join(&dir).join(name), text).unwrap();
            let link = mount.join(name);
            if link.symlink_metadata().is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(name), link).unwrap();
            }
        }
        let old = std::fs::read_link(mount.join("..data")).ok();
        std::os::unix::fs::symlink(&dir, mount.join("..data_tmp")).unwrap();
        std::fs::rename(mount.join("..data_tmp"), mount.join("..data")).unwrap();
        if let Some(old) = old {
            std::fs::remove_dir_all(mount.join(old)).unwrap();
        }
    }

    #[test]
    fn snapshots_tell_which_files_changed_and_which_are_missing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "one").unwrap();
        std::fs::write(&b, "two").unwrap();
        let files = [a.clone(), b.clone()];
        let first = Snapshot::take(&files);
        assert!(!first.missing());
        assert_eq!(Snapshot::take(&files), first);
        std::fs::write(&b, "three").unwrap();
        let second = Snapshot::take(&files);
        assert_eq!(second.changed_since(&first), vec![b.clone()]);
        assert_ne!(second.sha256(), first.sha256());
        assert_eq!(second.sha256().len(), 64);
        std::fs::remove_file(&a).unwrap();
        let third = Snapshot::take(&files);
        assert!(third.missing());
        assert_eq!(third.changed_since(&second), vec![a.clone()]);
        assert!(third.vanished_since(&second));
        assert!(
            !third.vanished_since(&third),
            "missing then too: not vanished"
        );
        // Extending keeps what was read and reads only what is new.
        std::fs::write(&a, "back").unwrap();
        let c = dir.path().join("c");
        std::fs::write(&c, "new").unwrap();
        let extended = third.extended(&[a.clone(), c.clone()]);
        assert!(extended.missing());
        assert_eq!(extended.changed_since(&third), vec![c]);
    }

    #[test]
    fn a_directorys_snapshot_is_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let pages = dir.path().join("pages");
        std::fs::create_dir(&pages).unwrap();
        std::fs::write(pages.join("404.html"), "gone").unwrap();
        let files = [pages.clone()];
        let first = Snapshot::take(&files);
        std::fs::create_dir(pages.join("sub")).unwrap();
        assert_eq!(
            Snapshot::take(&files),
            first,
            "a subdirectory is not a page"
        );
        std::fs::write(pages.join("404.html"), "lost").unwrap();
        assert_eq!(Snapshot::take(&files).changed_since(&first), vec![pages]);
    }

    #[test]
    fn an_in_place_write_is_handed_on_once_after_the_debounce() {
        let (_dir, file, mut poll, mut watch) = one_file("responder.toml", "one", false);
        assert!(!watch.polling());
        let written = Instant::now();
        std::fs::write(&file, "two").unwrap();
        let change = next_change(&mut poll, &mut watch, LIMIT).expect("the write is seen");
        assert!(written.elapsed() >= options(false).debounce);
        assert_eq!(change.changed, vec![file.clone()]);
        watch.follow(vec![file], change.snapshot, Instant::now());
        assert!(
            next_change(&mut poll, &mut watch, Duration::from_millis(300)).is_none(),
            "nothing more changed"
        );
    }

    #[test]
    fn a_configmap_swap_is_seen_every_time() {
        let mount = tempfile::tempdir().unwrap();
        swap(mount.path(), 1, &[("responder.toml", "one")]);
        let file = mount.path().join("responder.toml");
        let (mut poll, mut watch) = watching(std::slice::from_ref(&file), false);
        for serial in 2..5 {
            let text = format!("version {serial}");
            swap(mount.path(), serial, &[("responder.toml", &text)]);
            let change = next_change(&mut poll, &mut watch, LIMIT).expect("the swap is seen");
            assert_eq!(change.changed, vec![file.clone()]);
            assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
            watch.follow(vec![file.clone()], change.snapshot, Instant::now());
        }
    }

    #[test]
    fn a_rename_over_and_a_deleted_directory_coming_back_are_seen() {
        let top = tempfile::tempdir().unwrap();
        let conf = top.path().join("conf");
        std::fs::create_dir(&conf).unwrap();
        let file = conf.join("responder.toml");
        std::fs::write(&file, "one").unwrap();
        let (mut poll, mut watch) = watching(std::slice::from_ref(&file), false);
        std::fs::write(conf.join(".responder.toml.swp"), "two").unwrap();
        std::fs::rename(conf.join(".responder.toml.swp"), &file).unwrap();
        let change = next_change(&mut poll, &mut watch, LIMIT).expect("the rename is seen");
        assert_eq!(change.changed, vec![file.clone()]);
        watch.follow(vec![file.clone()], change.snapshot, Instant::now());
        // The directory goes (its watch with it) and comes back later.
        std::fs::remove_dir_all(&conf).unwrap();
        let change = next_change(&mut poll, &mut watch, LIMIT).expect("the removal is seen");
        assert!(
            change.snapshot.missing(),
            "a file that stays gone is handed on"
        );
        watch.follow(vec![file.clone()], change.snapshot, Instant::now());
        std::fs::create_dir(&conf).unwrap();
        std::fs::write(&file, "three").unwrap();
        let change = next_change(&mut poll, &mut watch, LIMIT).expect("the return is seen");
        assert_eq!(change.changed, vec![file.clone()]);
        assert!(!change.snapshot.missing());
    }

    #[test]
    fn a_file_deleted_and_put_back_within_the_debounce_is_not_missing() {
        let (_dir, file, mut poll, mut watch) = one_file("body.html", "one", false);
        std::fs::remove_file(&file).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        std::fs::write(&file, "two").unwrap();
        let change = next_change(&mut poll, &mut watch, LIMIT).expect("the change is seen");
        assert!(!change.snapshot.missing());
        assert_eq!(change.changed, vec![file]);
    }

    #[test]
    fn many_writes_make_few_changes_and_the_last_wins() {
        let (_dir, file, mut poll, mut watch) = one_file("responder.toml", "0", false);
        let writer = {
            let file = file.clone();
            std::thread::spawn(move || {
                for i in 1..=50 {
                    std::fs::write(&file, i.to_string()).unwrap();
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let mut changes = 0;
        let end = Instant::now() + LIMIT;
        while Instant::now() < end {
            // A quiet wait that began after the last write: nothing more is coming.
            let finished = writer.is_finished();
            match next_change(&mut poll, &mut watch, Duration::from_millis(400)) {
                Some(change) => {
                    changes += 1;
                    watch.follow(vec![file.clone()], change.snapshot, Instant::now());
                }
                None if finished => break,
                None => {}
            }
        }
        writer.join().unwrap();
        assert!(
            (1..=5).contains(&changes),
            "{changes} changes for 50 writes"
        );
        assert_eq!(
            watch.baseline,
            Snapshot::take(&[file]),
            "the last write is the one in force"
        );
    }

    #[test]
    fn a_directory_inotify_refuses_makes_the_watch_poll() {
        // A link to itself: the kernel refuses a watch on it (ELOOP), whoever asks.
        let dir = tempfile::tempdir().unwrap();
        let ring = dir.path().join("ring");
        std::os::unix::fs::symlink(&ring, &ring).unwrap();
        let file = ring.join("responder.toml");
        let (_poll, watch) = watching(std::slice::from_ref(&file), false);
        assert!(watch.polling());
        assert!(watch.deadline().is_some(), "polling keeps a timer");
    }

    #[test]
    fn polling_sees_a_change_without_inotify() {
        let (_dir, file, mut poll, mut watch) = one_file("responder.toml", "one", true);
        assert!(watch.polling());
        assert!(watch.deadline().is_some(), "polling keeps a timer");
        std::fs::write(&file, "two").unwrap();
        let change = next_change(&mut poll, &mut watch, LIMIT).expect("the poll sees it");
        assert_eq!(change.changed, vec![file]);
    }
}
