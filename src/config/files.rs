//! Reading the files the operator names: the configuration file, `body_file`s, the error pages'
//! files, the TLS certificates and keys, and what the watch digests. Only regular files are read
//! (through a symbolic link, as a mounted ConfigMap's are): opening a FIFO named by mistake would
//! wait for a writer, and a device might never end, either way holding the supervisor, its
//! reloads and its signals. What the bytes mean is the caller's.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The contents of the regular file at `path`.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    // Non-blocking, so that a FIFO's open returns at once and is refused below; a regular
    // file's reads are the same either way.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The contents of the regular file at `path`, which must be UTF-8.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}
