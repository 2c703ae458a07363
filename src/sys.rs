//! Every call into the C library the server makes, each behind a safe function whose soundness
//! does not depend on its caller: the descriptor limit, the allocator's thresholds and free pages,
//! a pipe's capacity, the writer thread's scheduling class, the host's name. It is the one
//! module allowed `unsafe`; what each call is for is said where it is called.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Once;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the soft limit now in force.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; setrlimit only reads it.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// Fixes glibc's mmap and trim thresholds at `bytes`, once per process however often it is
/// called (elsewhere, musl or other systems, it does nothing).
pub fn fix_allocator_thresholds(bytes: i32) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt takes the arenas' locks itself, so other threads may allocate
        // meanwhile; it only sets two parameters.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, bytes);
            libc::mallopt(libc::M_TRIM_THRESHOLD, bytes);
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        let _ = bytes;
    });
}

/// Hands the allocator's whole free pages inside its arenas back to the kernel (glibc only).
pub fn return_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it takes each arena's lock itself.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Asks for a pipe of `bytes` behind `fd`; a descriptor that is not a pipe, or a size above
/// `fs.pipe-max-size`, leaves it as it is.
pub fn widen_pipe(fd: &impl AsRawFd, bytes: usize) {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: fcntl(2) on a descriptor the caller holds open; F_SETPIPE_SZ only resizes a pipe
    // and fails on anything else.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) };
}

/// Moves the calling thread to `SCHED_BATCH`.
pub fn schedule_as_batch() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler(2) on the calling thread (pid 0) with a valid parameter; any
    // thread may move itself from SCHED_OTHER to SCHED_BATCH.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
}

/// This machine's name (the pod's, in Kubernetes); empty if it cannot be read.
pub fn hostname() -> String {
    let mut name = [0u8; 256];
    // SAFETY: gethostname writes at most `name.len()` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) };
    if rc != 0 {
        return String::new();
    }
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..len]).into_owned()
}

/// `recv(2)` with no flags, made as a plain system call: the C library's `recv` is a thread
/// cancellation point, which in a process with threads costs two extra calls around every read,
/// and the server cancels no thread.
pub fn recv(socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which we borrow mutably;
    // the two null pointers say that no source address is wanted.
    let n = unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            libc::c_long::from(socket.as_raw_fd()),
            buf.as_mut_ptr(),
            buf.len(),
            0 as libc::c_long,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `send(2)` with `MSG_NOSIGNAL` (a peer gone is an error, not a SIGPIPE), made as a plain
/// system call for the reason `recv` is. `last` says the socket is closed (or its write side
/// shut) right after these bytes, with nothing unread: `MSG_MORE` then holds the last segment
/// back for the close, which sends it with the FIN, one segment and one wake-up of the peer
/// fewer. (A close over unread input resets the connection, and the reset drops what is held.)
pub fn send(socket: &impl AsRawFd, buf: &[u8], last: bool) -> io::Result<usize> {
    let flags = if last {
        libc::MSG_NOSIGNAL | libc::MSG_MORE
    } else {
        libc::MSG_NOSIGNAL
    };
    // SAFETY: the kernel reads at most `buf.len()` bytes from `buf`, which we borrow; the null
    // address and zero length say the socket's peer is the destination.
    let n = unsafe {
        libc::syscall(
            libc::SYS_sendto,
            libc::c_long::from(socket.as_raw_fd()),
            buf.as_ptr(),
            buf.len(),
            libc::c_long::from(flags),
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::socklen_t,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn send_and_recv_move_bytes_and_report_errors_as_errno() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 16];
        let empty = recv(&server, &mut buf).expect_err("nothing to read yet");
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(send(&client, b"ping", false).expect("send"), 4);
        client.set_nonblocking(false).expect("blocking");
        server.set_nonblocking(false).expect("blocking");
        assert_eq!(recv(&server, &mut buf).expect("recv"), 4);
        assert_eq!(&buf[..4], b"ping");
        drop(client);
        assert_eq!(recv(&server, &mut buf).expect("the peer's FIN"), 0);
        // Writing to a peer that is gone fails (EPIPE or a reset).
        let mut failed = false;
        for _ in 0..100 {
            if send(&server, b"x", false).is_err() {
                failed = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(failed, "writing to a closed peer kept succeeding");
    }
}
