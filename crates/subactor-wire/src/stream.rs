//! Frames over a Unix stream socket, with file descriptors passed alongside.
//!
//! A frame is a header, `[length: u32 LE][fd count: u8]`, then `length` bytes of body
//! (an item of [`codec`](subactor_core::codec)). The descriptors a frame carries travel
//! as `SCM_RIGHTS` ancillary data of the `sendmsg` that sends the frame's first byte;
//! the kernel delivers them with that byte, so the reader queues every descriptor it
//! receives and hands the next `fd count` of them to the frame whose header it parses.
//!
//! Reading never trusts the peer: a length over the limit, a frame that claims more
//! descriptors than arrived, or an end of stream inside a frame is a [`LinkError`],
//! and memory grows with the bytes that actually arrive, not with a claimed length.
//!
//! A reader waits by spinning (re-trying a non-blocking `recvmsg`) for a short while
//! before it sleeps in `poll`: a peer that answers within microseconds is seen without
//! a scheduler wake-up each way.
//!
//! # Shared rings
//!
//! A link between two processes can carry its bytes through shared memory instead
//! ([`offer_shared`] on one end, [`join_shared`] on the other): two
//! [`Ring`](subactor_arena::Ring)s, one each way, which the offering end creates and
//! sends as the link's first frame. The frames are the same; only where their bytes
//! travel changes. Writing a frame is then a copy and a store, and a spinning reader sees
//! it with a load: no system call on either side (a round trip between two processes
//! spinning on a socket took 3.3 us here, on a ring 0.1 us). The socket keeps what
//! shared memory cannot do:
//!
//! - descriptors: a frame that carries some sends them first, with one byte, over the
//!   socket; the reader takes them from there when it parses the frame's header;
//! - the peer's end: its socket closes when it exits, however it exits, which wakes a
//!   sleeping reader; the bytes it wrote before are still read first.
//!
//! A reader about to sleep raises a flag in the ring and sleeps in `poll` on the socket
//! and on the ring's *bell*, an eventfd (sent with the rings); a writer that finds the
//! flag raised after its write rings the bell. Not a byte on the socket: a socket write
//! wakes its reader as a "sync" wake-up, which puts it on the writer's core, and the two
//! then spin on one core, a handover per round trip.

use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
    recvmsg, sendmsg,
};
use subactor_arena::{Ring, RingError, RingReader, RingWriter};

/// The most descriptors one frame carries.
pub const MAX_FDS: usize = 8;

/// The longest body a frame may have (the length field's limit).
pub const MAX_FRAME: usize = u32::MAX as usize;

const HEADER: usize = 5;

/// The data capacity of each ring of a shared link ([`offer_shared`]): what a writer
/// may have in flight before it waits for its reader, as much as a Unix socket's
/// default send buffer (`net.core.wmem_default`, 208 KiB) let it before, so that two
/// ends that both write a large frame before they read fare as they did over the
/// socket. Pages are touched as the bytes first come round.
pub const RING_CAPACITY: usize = 256 << 10;

/// The first frame of a link whose offering end made two rings (they come with it: the
/// one it writes, the one it reads, then their bells in the same order).
const OFFER_RINGS: &[u8] = b"subactor-link/1 rings";
/// The first frame of a link whose offering end could not make them: the socket alone.
const OFFER_SOCKET: &[u8] = b"subactor-link/1 socket";

/// What went wrong on a link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The peer closed the connection (or died).
    #[error("the connection was closed by the other side")]
    Closed,
    /// Nothing arrived before the deadline.
    #[error("nothing arrived within the timeout")]
    Timeout,
    /// A system call failed.
    #[error("link I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something that is not a valid frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A frame could not be encoded.
    #[error("cannot encode a frame: {0}")]
    Encode(String),
}

impl From<RingError> for LinkError {
    fn from(error: RingError) -> LinkError {
        match error {
            RingError::Corrupt(why) => LinkError::Malformed(why),
            RingError::Io(error) => LinkError::Io(error),
            other => LinkError::Io(std::io::Error::other(other.to_string())),
        }
    }
}

impl From<Errno> for LinkError {
    fn from(errno: Errno) -> LinkError {
        match errno {
            Errno::PIPE | Errno::CONNRESET => LinkError::Closed,
            other => LinkError::Io(other.into()),
        }
    }
}

/// A received frame: its body and the descriptors it carried.
#[derive(Debug)]
pub struct Frame {
    /// Holds the body at `offset..` (a large frame keeps the read buffer it arrived in).
    data: Vec<u8>,
    offset: usize,
    /// The descriptors, in the order they were sent.
    pub fds: Vec<OwnedFd>,
}

impl Frame {
    /// A frame of `body`, carrying no descriptor (as if received: for tests and
    /// decoders' fuzzing).
    pub fn from_body(body: Vec<u8>) -> Frame {
        Frame { data: body, offset: 0, fds: Vec::new() }
    }

    /// The frame's body.
    pub fn body(&self) -> &[u8] {
        &self.data[self.offset..]
    }
}

/// Makes the socket non-blocking: readers spin, then poll; writers poll when the
/// socket's buffer is full.
fn nonblocking(fd: &OwnedFd) -> Result<(), LinkError> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// Waits until `fd` is ready for `flags`, up to `deadline`.
fn wait_ready(fd: BorrowedFd<'_>, flags: PollFlags, deadline: Option<Instant>) -> Result<(), LinkError> {
    poll_until(&mut [PollFd::new(&fd, flags)], deadline)
}

/// Polls `fds` until one of them is ready, up to `deadline`.
fn poll_until(fds: &mut [PollFd<'_>], deadline: Option<Instant>) -> Result<(), LinkError> {
    loop {
        let timeout = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(LinkError::Timeout);
                }
                Some(Timespec::try_from(left).unwrap_or(Timespec { tv_sec: i64::MAX, tv_nsec: 0 }))
            }
            None => None,
        };
        match poll(fds, timeout.as_ref()) {
            Ok(0) | Err(Errno::INTR) => continue,
            Ok(_) => return Ok(()),
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Whether the other end of the socket `fd` is gone (closed, or the process that held it
/// ended). Not whether it is readable: bytes may wait that were sent before the end.
pub fn hung_up(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(&fd, PollFlags::empty())];
    let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
    matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0 && fds[0].revents().intersects(PollFlags::HUP | PollFlags::ERR))
}

/// The ring a shared link's writer writes, and the bell of its reader.
#[derive(Debug)]
struct Outbound {
    ring: RingWriter,
    bell: OwnedFd,
}

/// The ring a shared link's reader reads, and its bell, which the ring's writer rings
/// when this reader sleeps.
#[derive(Debug)]
struct Inbound {
    ring: RingReader,
    bell: OwnedFd,
}

/// Rings a bell (an eventfd): adds one to its count, which wakes a `poll` on it.
fn ring_bell(bell: &OwnedFd) -> Result<(), LinkError> {
    loop {
        match rustix::io::write(bell, &1u64.to_ne_bytes()) {
            // EAGAIN: the count is at its maximum, so the bell is ringing already.
            Ok(_) | Err(Errno::AGAIN) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Waits until `socket` or `bell` is readable, up to `deadline`.
fn wait_either(socket: BorrowedFd<'_>, bell: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<(), LinkError> {
    poll_until(&mut [PollFd::new(&socket, PollFlags::IN), PollFd::new(&bell, PollFlags::IN)], deadline)
}

/// The sending half of a link: frames from several threads, one at a time.
#[derive(Debug, Clone)]
pub struct FrameWriter {
    fd: Arc<OwnedFd>,
    /// Held while a frame is sent; the ring the frames go through, on a shared link.
    out: Arc<Mutex<Option<Outbound>>>,
}

impl FrameWriter {
    /// Sends one frame whose body is `body`, with `fds`; waits while the socket's
    /// buffer is full.
    pub fn send(&self, body: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), LinkError> {
        let len = u32::try_from(body.len())
            .map_err(|_| LinkError::Encode(format!("a frame of {} bytes is over the limit", body.len())))?;
        if fds.len() > MAX_FDS {
            return Err(LinkError::Encode(format!("{} descriptors in one frame (at most {MAX_FDS})", fds.len())));
        }
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4] = fds.len() as u8;
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match out.as_mut() {
            None => self.send_socket(&header, body, fds),
            Some(out) => {
                if !fds.is_empty() {
                    // The descriptors go first, so that they wait on the socket by the time
                    // the reader parses the header that counts them.
                    self.send_socket(&[0], &[], fds)?;
                }
                self.send_ring(out, [&header, body])
            }
        }
    }

    /// Writes `parts` into the ring, waiting for room while it is full, then wakes the
    /// reader if it went to sleep (once per frame, or before each wait for room: a reader
    /// asleep frees none).
    fn send_ring(&self, out: &mut Outbound, parts: [&[u8]; 2]) -> Result<(), LinkError> {
        for mut bytes in parts {
            while !bytes.is_empty() {
                let n = out.ring.write(bytes)?;
                if n == 0 {
                    Self::wake_reader(out)?;
                    self.wait_for_room(&out.ring)?;
                    continue;
                }
                bytes = &bytes[n..];
            }
        }
        Self::wake_reader(out)
    }

    /// Rings the reader's bell if it went to sleep.
    fn wake_reader(out: &Outbound) -> Result<(), LinkError> {
        if out.ring.reader_asleep() {
            ring_bell(&out.bell)?;
        }
        Ok(())
    }

    /// Waits until the ring has room: yielding for a while (a reader that is reading
    /// frees room within microseconds), then sleeping in short naps, watching for the
    /// reader's end.
    fn wait_for_room(&self, ring: &RingWriter) -> Result<(), LinkError> {
        let started = Instant::now();
        loop {
            if ring.has_room()? {
                return Ok(());
            }
            if started.elapsed() < Duration::from_micros(200) {
                std::thread::yield_now();
                continue;
            }
            if hung_up(self.fd.as_fd()) {
                return Err(LinkError::Closed);
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Sends `header` then `body` over the socket, `fds` with their first byte.
    fn send_socket(&self, header: &[u8], body: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), LinkError> {
        let total = header.len() + body.len();
        let mut sent = 0;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        while sent < total {
            let iov = if sent < header.len() {
                [IoSlice::new(&header[sent..]), IoSlice::new(body)]
            } else {
                [IoSlice::new(&body[sent - header.len()..]), IoSlice::new(&[])]
            };
            let mut control = SendAncillaryBuffer::new(&mut space);
            if sent == 0 && !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
                return Err(LinkError::Encode("the descriptors do not fit the control buffer".into()));
            }
            match sendmsg(&*self.fd, &iov, &mut control, SendFlags::NOSIGNAL) {
                Ok(n) => sent += n,
                Err(Errno::AGAIN) => wait_ready(self.fd.as_fd(), PollFlags::OUT, None)?,
                Err(Errno::INTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
        Ok(())
    }

    /// Shuts the socket down in both directions: the peer's reads end, and so do ours.
    pub fn shutdown(&self) {
        let _ = rustix::net::shutdown(&*self.fd, rustix::net::Shutdown::Both);
    }
}

/// The receiving half of a link. One thread reads at a time (it takes `&mut self`).
#[derive(Debug)]
pub struct FrameReader {
    fd: Arc<OwnedFd>,
    /// Bytes read and not yet taken are `buf[start..end]`; `buf[end..]` is room,
    /// initialised once when the buffer grows.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    fds: VecDeque<OwnedFd>,
    spin: Duration,
    /// The ring the bytes come through, on a shared link.
    inbound: Option<Inbound>,
    /// The socket's end was read (on a shared link: what is left in the ring still comes).
    eof: bool,
}

/// Splits a connected Unix stream socket into its halves. `spin` is how long a reader
/// spins before it sleeps (zero: never).
pub fn split(fd: OwnedFd, spin: Duration) -> Result<(FrameWriter, FrameReader), LinkError> {
    nonblocking(&fd)?;
    let fd = Arc::new(fd);
    let writer = FrameWriter { fd: Arc::clone(&fd), out: Arc::default() };
    let reader =
        FrameReader { fd, buf: Vec::new(), start: 0, end: 0, fds: VecDeque::new(), spin, inbound: None, eof: false };
    Ok((writer, reader))
}

/// Splits a connected Unix stream socket as [`split`] does and makes the link a shared
/// one (module docs): creates two rings and sends them as the link's first frame, for
/// the other end's [`join_shared`]. Where rings cannot be made (no memfd), says so in
/// that frame instead, and the link carries its bytes over the socket.
pub fn offer_shared(fd: OwnedFd, spin: Duration) -> Result<Halves, LinkError> {
    let (writer, mut reader) = split(fd, spin)?;
    let rings = Ring::create(RING_CAPACITY).and_then(|ours| Ok((ours, Ring::create(RING_CAPACITY)?))).and_then(
        |(ours, theirs)| {
            let bell = || rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK);
            Ok((ours, theirs, bell().map_err(std::io::Error::from)?, bell().map_err(std::io::Error::from)?))
        },
    );
    let (ours, theirs, our_bell, their_bell) = match rings {
        Ok(rings) => rings,
        Err(error) => {
            tracing::debug!(%error, "no shared rings: the link carries its bytes over its socket");
            writer.send(OFFER_SOCKET, &[])?;
            return Ok((writer, reader));
        }
    };
    let (Some(ours_fd), Some(theirs_fd)) = (ours.fd(), theirs.fd()) else {
        writer.send(OFFER_SOCKET, &[])?;
        return Ok((writer, reader));
    };
    // Each ring comes with its bell, which its writer rings and its reader polls.
    writer.send(OFFER_RINGS, &[ours_fd, theirs_fd, our_bell.as_fd(), their_bell.as_fd()])?;
    // Mapped here and sent: the memfds are not needed any more (descriptors are few).
    let (mut ours, mut theirs) = (ours, theirs);
    ours.close_fd();
    theirs.close_fd();
    *writer.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some(Outbound { ring: ours.into_writer(), bell: our_bell });
    reader.inbound = Some(Inbound { ring: theirs.into_reader(), bell: their_bell });
    Ok((writer, reader))
}

/// The other end of [`offer_shared`]: splits the socket, reads the offer (waiting for it
/// up to `deadline`) and carries the link's bytes as it says.
pub fn join_shared(fd: OwnedFd, spin: Duration, deadline: Option<Instant>) -> Result<Halves, LinkError> {
    let (writer, mut reader) = split(fd, spin)?;
    let mut offer = reader.recv(deadline)?;
    match (offer.body(), offer.fds.len()) {
        (OFFER_SOCKET, 0) => {}
        (OFFER_RINGS, 4) => {
            let mut fds = std::mem::take(&mut offer.fds).into_iter();
            let (Some(theirs), Some(ours), Some(our_bell), Some(their_bell)) =
                (fds.next(), fds.next(), fds.next(), fds.next())
            else {
                return Err(LinkError::Closed);
            };
            // The offering end writes into the first ring and reads from the second.
            let mut to_us = Ring::join(theirs)?;
            let mut to_them = Ring::join(ours)?;
            to_us.close_fd();
            to_them.close_fd();
            // Whatever the socket brought after the offer are wake-ups: frames come
            // through the ring from now on (descriptors sent since stay queued).
            (reader.start, reader.end) = (0, 0);
            reader.inbound = Some(Inbound { ring: to_us.into_reader(), bell: our_bell });
            *writer.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(Outbound { ring: to_them.into_writer(), bell: their_bell });
        }
        (body, fds) => {
            return Err(LinkError::Malformed(format!(
                "a link's first frame is not an offer: {} bytes, {fds} descriptors",
                body.len()
            )));
        }
    }
    Ok((writer, reader))
}

/// The two halves of one end of a link.
pub type Halves = (FrameWriter, FrameReader);

/// A connected pair of sockets, each end split (for tests and in-process links).
pub fn pair(spin: Duration) -> Result<(Halves, Halves), LinkError> {
    let (a, b) = socketpair()?;
    Ok((split(a, spin)?, split(b, spin)?))
}

/// A connected pair of Unix stream sockets, close-on-exec.
pub fn socketpair() -> Result<(OwnedFd, OwnedFd), LinkError> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    Ok(rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)?)
}

impl FrameReader {
    /// Changes how long the reader spins before it sleeps.
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin;
    }

    /// The socket, for polling it beside other descriptors.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The next frame, waiting up to `deadline` (forever with `None`), spinning first
    /// for the reader's spin time.
    pub fn recv(&mut self, deadline: Option<Instant>) -> Result<Frame, LinkError> {
        self.recv_spinning(deadline, self.spin)
    }

    /// The next frame, waiting up to `deadline`, spinning first for `spin` (see
    /// [`subactor_core::spin_for`]).
    pub fn recv_spinning(&mut self, deadline: Option<Instant>, spin: Duration) -> Result<Frame, LinkError> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(frame);
            }
            self.fill(deadline, spin)?;
        }
    }

    /// Whether the link carries its bytes through shared rings ([`offer_shared`]).
    pub fn is_shared(&self) -> bool {
        self.inbound.is_some()
    }

    /// The next frame if one has arrived whole, without waiting.
    pub fn try_recv(&mut self) -> Result<Option<Frame>, LinkError> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(Some(frame));
            }
            if self.inbound.is_some() {
                if self.read_ring()? {
                    continue;
                }
                return if self.eof { Err(LinkError::Closed) } else { Ok(None) };
            }
            match self.read_once() {
                Ok(()) => {}
                Err(Errno::AGAIN) => return Ok(None),
                Err(Errno::INTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
    }

    /// Takes a whole frame off the front of the buffer, if there is one.
    fn parse(&mut self) -> Result<Option<Frame>, LinkError> {
        let unread = &self.buf[self.start..self.end];
        if unread.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_le_bytes([unread[0], unread[1], unread[2], unread[3]]) as usize;
        let nfds = usize::from(unread[4]);
        if nfds > MAX_FDS {
            return Err(LinkError::Malformed(format!("a frame claims {nfds} descriptors (at most {MAX_FDS})")));
        }
        if unread.len() < HEADER + len {
            return Ok(None);
        }
        if self.fds.len() < nfds && self.inbound.is_some() {
            // On a shared link the descriptors were sent over the socket before the frame.
            self.drain_socket()?;
        }
        if self.fds.len() < nfds {
            return Err(LinkError::Malformed(format!(
                "a frame claims {nfds} descriptors but {} arrived",
                self.fds.len()
            )));
        }
        let body_start = self.start + HEADER;
        let body_end = body_start + len;
        let fds = self.fds.drain(..nfds).collect();
        if body_end == self.end && len >= 1 << 20 {
            // A large frame that ends what was read: hand the buffer over, no copy.
            let mut data = std::mem::take(&mut self.buf);
            data.truncate(body_end);
            (self.start, self.end) = (0, 0);
            return Ok(Some(Frame { data, offset: body_start, fds }));
        }
        let data = self.buf[body_start..body_end].to_vec();
        self.start = body_end;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        Ok(Some(Frame { data, offset: 0, fds }))
    }

    /// Reads what has arrived, waiting for it up to `deadline`: spinning for up to
    /// `spin` while a core is spare, then sleeping in `poll`.
    fn fill(&mut self, deadline: Option<Instant>, spin: Duration) -> Result<(), LinkError> {
        if self.inbound.is_some() {
            return self.fill_from_ring(deadline, spin);
        }
        let spun = subactor_core::spin_for_syscalls(spin, || match self.read_once() {
            Ok(()) => Some(Ok(())),
            Err(Errno::AGAIN | Errno::INTR) => None,
            Err(errno) => Some(Err(errno)),
        });
        if let Some(read) = spun {
            return read.map_err(LinkError::from);
        }
        loop {
            match self.read_once() {
                Ok(()) => return Ok(()),
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(LinkError::Timeout);
                    }
                    wait_ready(self.fd.as_fd(), PollFlags::IN, deadline)?;
                }
                Err(errno) => return Err(errno.into()),
            }
        }
    }

    /// [`fill`](Self::fill) on a shared link: spins on the ring (a load per look), then
    /// raises its "wake me" flag and sleeps in `poll` on the ring's bell (rung by the
    /// writer) and on the socket (readable with a frame's descriptors or the peer's end).
    fn fill_from_ring(&mut self, deadline: Option<Instant>, spin: Duration) -> Result<(), LinkError> {
        let spun = subactor_core::spin_for(spin, || match self.read_ring() {
            Ok(true) => Some(Ok(())),
            Ok(false) => None,
            Err(error) => Some(Err(error)),
        });
        if let Some(read) = spun {
            return read;
        }
        loop {
            if self.read_ring()? {
                return Ok(());
            }
            if self.eof {
                return Err(LinkError::Closed);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(LinkError::Timeout);
            }
            let Some(Inbound { ring, bell }) = self.inbound.as_ref() else { return Err(LinkError::Closed) };
            if !ring.sleep()? {
                continue;
            }
            let waited = wait_either(self.fd.as_fd(), bell.as_fd(), deadline);
            ring.wake();
            waited?;
            let mut count = [0u8; 8];
            match rustix::io::read(bell, &mut count) {
                Ok(_) | Err(Errno::AGAIN | Errno::INTR) => {}
                Err(errno) => return Err(errno.into()),
            }
            self.drain_socket()?;
        }
    }

    /// Moves what waits in the ring into the buffer; whether anything came.
    fn read_ring(&mut self) -> Result<bool, LinkError> {
        self.make_room();
        let Some(inbound) = self.inbound.as_mut() else { return Ok(false) };
        let n = inbound.ring.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n > 0)
    }

    /// On a shared link: reads what the socket holds (the one-byte carriers of frames'
    /// descriptors: the bytes dropped, the descriptors queued) without waiting, and notes
    /// the peer's end.
    fn drain_socket(&mut self) -> Result<(), LinkError> {
        let mut scratch = [0u8; 64];
        loop {
            match recv_some(&self.fd, &mut scratch, &mut self.fds) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(_) => {}
                Err(Errno::AGAIN) => return Ok(()),
                Err(Errno::INTR) => {}
                Err(Errno::CONNRESET) => {
                    self.eof = true;
                    return Ok(());
                }
                Err(errno) => return Err(errno.into()),
            }
        }
    }

    /// Makes room after `end` for more of the frame being read (its rest, or as much again
    /// as has arrived of it; at least 64 KiB), moving the unread bytes to the front or
    /// growing the buffer.
    fn make_room(&mut self) {
        let unread = self.end - self.start;
        let frame = match self.buf[self.start..self.end].get(..4) {
            Some(len) => HEADER + u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize,
            None => HEADER,
        };
        // Memory grows with what arrives (doubling: at most as much again ahead of it,
        // and 64 KiB), not with what a header claims: 5 bytes claiming 4 GiB cost 64 KiB.
        let wanted = frame.min(unread + unread.max(64 << 10)).max(unread + (64 << 10));
        if self.buf.len() - self.start >= wanted && self.end < self.buf.len() {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, unread);
        }
        if self.buf.len() < wanted {
            self.buf.resize(wanted, 0);
        }
    }

    /// One `recvmsg`: appends the bytes to the buffer and queues the descriptors.
    fn read_once(&mut self) -> Result<(), Errno> {
        self.make_room();
        let n = recv_some(&self.fd, &mut self.buf[self.end..], &mut self.fds)?;
        self.end += n;
        if n == 0 {
            return Err(Errno::PIPE);
        }
        Ok(())
    }
}

/// One non-blocking `recvmsg` on `fd` into `buf`: the count of bytes (0 at the end of
/// the stream); the descriptors that came with them are queued on `fds`.
fn recv_some(fd: &OwnedFd, buf: &mut [u8], fds: &mut VecDeque<OwnedFd>) -> Result<usize, Errno> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = recvmsg(fd, &mut [IoSliceMut::new(buf)], &mut control, RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT)?;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    Ok(msg.bytes)
}

#[cfg(test)]
mod tests;
