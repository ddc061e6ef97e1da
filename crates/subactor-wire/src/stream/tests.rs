//! The framing, with real sockets: frames whole or in pieces, descriptors alongside,
//! and a peer that lies (hostile lengths, missing descriptors, truncation).

use std::io::Write;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn soon() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(10))
}

/// `frame` is "with a descriptor" and carries one: an open `/proc/self/status`.
fn assert_carries_the_status_file(frame: Frame) {
    assert_eq!(frame.body(), b"with a descriptor");
    assert_eq!(frame.fds.len(), 1);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(frame.fds.into_iter().next().expect("fd")), &mut text)
        .expect("readable");
    assert!(text.contains("Pid:"));
}

#[test]
fn frames_arrive_whole_in_order_with_their_descriptors() {
    let ((a_w, _a_r), (_b_w, mut b_r)) = pair(Duration::ZERO).expect("pair");
    let file = std::fs::File::open("/proc/self/status").expect("a file");
    let big = vec![7u8; 3 << 20];
    let sent = big.clone();
    // The big frame fills the socket's buffer: the writer waits for the reader.
    let writer = std::thread::spawn(move || {
        a_w.send(b"first", &[]).expect("send");
        a_w.send(b"with a descriptor", &[file.as_fd()]).expect("send");
        a_w.send(&sent, &[]).expect("send");
        a_w.send(b"", &[]).expect("send");
        file
    });
    assert_eq!(b_r.recv(soon()).expect("1").body(), b"first");
    let second = b_r.recv(soon()).expect("2");
    assert_carries_the_status_file(second);
    assert_eq!(b_r.recv(soon()).expect("3").body(), &big[..]);
    assert_eq!(b_r.recv(soon()).expect("4").body(), b"");
    writer.join().expect("writer");
}

#[test]
fn a_reader_waits_up_to_its_deadline_and_sees_the_peer_close() {
    let ((a_w, a_r), (_b_w, mut b_r)) = pair(Duration::ZERO).expect("pair");
    let started = Instant::now();
    assert!(matches!(b_r.recv(Some(Instant::now() + Duration::from_millis(50))), Err(LinkError::Timeout)));
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(b_r.try_recv().expect("nothing yet").is_none());
    drop((a_w, a_r));
    assert!(matches!(b_r.recv(soon()), Err(LinkError::Closed)));
}

/// A reader over a socket whose other end the test writes raw bytes into.
fn raw() -> (UnixStream, FrameReader) {
    let (ours, theirs) = socketpair().expect("socketpair");
    // SAFETY: a descriptor we own, handed over once.
    let stream = unsafe { UnixStream::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(ours)) };
    let (_, reader) = split(theirs, Duration::ZERO).expect("split");
    (stream, reader)
}

#[test]
fn a_truncated_frame_is_the_connection_closing_not_a_hang() {
    let (mut peer, mut reader) = raw();
    peer.write_all(&[10, 0, 0, 0, 0, 1, 2, 3]).expect("write");
    drop(peer);
    assert!(matches!(reader.recv(soon()), Err(LinkError::Closed)));
}

#[test]
fn a_hostile_length_costs_only_the_bytes_that_arrive() {
    let (mut peer, mut reader) = raw();
    peer.write_all(&[0xff, 0xff, 0xff, 0xff, 0]).expect("write");
    peer.write_all(&[0u8; 1000]).expect("write");
    assert!(matches!(reader.recv(Some(Instant::now() + Duration::from_millis(50))), Err(LinkError::Timeout)));
    assert!(reader.buf.len() <= (64 << 10) + 2000, "the buffer grew to {} bytes", reader.buf.len());
    drop(peer);
    assert!(matches!(reader.recv(soon()), Err(LinkError::Closed)));
}

#[test]
fn descriptors_claimed_but_not_sent_are_an_error() {
    let (mut peer, mut reader) = raw();
    peer.write_all(&[1, 0, 0, 0, 2, 9]).expect("write");
    assert!(matches!(reader.recv(soon()), Err(LinkError::Malformed(_))));
    let (mut peer, mut reader) = raw();
    peer.write_all(&[1, 0, 0, 0, 200, 9]).expect("write");
    assert!(matches!(reader.recv(soon()), Err(LinkError::Malformed(_))));
}

#[test]
fn too_many_descriptors_are_refused_before_sending() {
    let ((a_w, _), _) = pair(Duration::ZERO).expect("pair");
    let files: Vec<OwnedFd> =
        (0..MAX_FDS + 1).map(|_| OwnedFd::from(std::fs::File::open("/proc/self/status").expect("file"))).collect();
    let fds: Vec<_> = files.iter().map(AsFd::as_fd).collect();
    assert!(matches!(a_w.send(b"x", &fds), Err(LinkError::Encode(_))));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever bytes a peer writes, the reader answers frames or errors: it never
    /// panics, and every frame it returns lies within what was written.
    #[test]
    fn arbitrary_bytes_never_break_the_reader(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let (mut peer, mut reader) = raw();
        peer.write_all(&bytes).expect("write");
        drop(peer);
        let mut total = 0;
        loop {
            match reader.recv(soon()) {
                Ok(frame) => {
                    total += HEADER + frame.body().len();
                    prop_assert!(total <= bytes.len());
                }
                Err(LinkError::Closed | LinkError::Malformed(_)) => break,
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }
    }

    /// Frames written whole come out whole, however the bytes are split on the way.
    #[test]
    fn frames_survive_any_split(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20),
                                cut in 1usize..64) {
        let (mut peer, mut reader) = raw();
        let mut wire = Vec::new();
        for body in &bodies {
            wire.extend_from_slice(&u32::try_from(body.len()).expect("small").to_le_bytes());
            wire.push(0);
            wire.extend_from_slice(body);
        }
        let writer = std::thread::spawn(move || {
            for chunk in wire.chunks(cut) {
                peer.write_all(chunk).expect("write");
            }
        });
        for body in &bodies {
            let frame = reader.recv(soon()).expect("a frame");
            prop_assert_eq!(frame.body(), &body[..]);
        }
        writer.join().expect("writer");
    }
}

/// Both ends of a shared link (rings in shared memory, the socket beside them).
fn shared_pair(spin: Duration) -> (Halves, Halves) {
    let (a, b) = socketpair().expect("socketpair");
    let offered = offer_shared(a, spin).expect("offer");
    let joined = join_shared(b, spin, soon()).expect("join");
    assert!(offered.1.is_shared() && joined.1.is_shared(), "both ends use the rings");
    (offered, joined)
}

#[test]
fn a_shared_link_carries_frames_whole_in_order_with_their_descriptors_both_ways() {
    for spin in [Duration::ZERO, Duration::from_micros(50)] {
        let ((a_w, mut a_r), (b_w, mut b_r)) = shared_pair(spin);
        let file = std::fs::File::open("/proc/self/status").expect("a file");
        // Larger than a ring: the writer waits for the reader to make room.
        let big: Vec<u8> = (0..(3 << 20)).map(|i: u32| (i % 251) as u8).collect();
        let sent = big.clone();
        let writer = std::thread::spawn(move || {
            for i in 0..1000u32 {
                a_w.send(&i.to_le_bytes(), &[]).expect("send");
            }
            a_w.send(b"with a descriptor", &[file.as_fd()]).expect("send");
            a_w.send(&sent, &[]).expect("send");
            a_w.send(b"", &[]).expect("send");
            file
        });
        for i in 0..1000u32 {
            assert_eq!(b_r.recv(soon()).expect("small").body(), i.to_le_bytes());
        }
        let second = b_r.recv(soon()).expect("with fd");
        assert_carries_the_status_file(second);
        assert_eq!(b_r.recv(soon()).expect("big").body(), &big[..]);
        assert_eq!(b_r.recv(soon()).expect("empty").body(), b"");
        writer.join().expect("writer");
        // And the other way.
        b_w.send(b"back", &[]).expect("send back");
        assert_eq!(a_r.recv(soon()).expect("back").body(), b"back");
    }
}

#[test]
fn a_sleeping_reader_of_a_shared_link_is_woken_by_a_frame() {
    let ((a_w, _a_r), (_b_w, mut b_r)) = shared_pair(Duration::ZERO);
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        a_w.send(b"late", &[]).expect("send");
        a_w
    });
    let started = Instant::now();
    assert_eq!(b_r.recv(soon()).expect("woken").body(), b"late");
    assert!(started.elapsed() >= Duration::from_millis(90), "it slept until the frame came");
    drop(writer.join().expect("writer"));
}

#[test]
fn a_shared_link_times_out_then_reads_what_the_peer_wrote_before_it_closed() {
    let ((a_w, a_r), (_b_w, mut b_r)) = shared_pair(Duration::from_micros(20));
    let started = Instant::now();
    assert!(matches!(b_r.recv(Some(Instant::now() + Duration::from_millis(50))), Err(LinkError::Timeout)));
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(b_r.try_recv().expect("nothing yet").is_none());
    a_w.send(b"last words", &[]).expect("send");
    drop((a_w, a_r));
    assert_eq!(b_r.recv(soon()).expect("written before the close").body(), b"last words");
    assert!(matches!(b_r.recv(soon()), Err(LinkError::Closed)));
    assert!(matches!(b_r.try_recv(), Err(LinkError::Closed)));
}

#[test]
fn a_writer_waiting_for_room_sees_the_reader_gone() {
    let ((a_w, _a_r), (b_w, b_r)) = shared_pair(Duration::ZERO);
    drop((b_w, b_r));
    let big = vec![0u8; 4 * RING_CAPACITY];
    assert!(matches!(a_w.send(&big, &[]), Err(LinkError::Closed)), "an error, not a hang");
}

#[test]
fn a_link_whose_first_frame_is_no_offer_is_refused() {
    let (ours, theirs) = socketpair().expect("socketpair");
    let (w, _r) = split(ours, Duration::ZERO).expect("split");
    w.send(b"hello", &[]).expect("send");
    assert!(matches!(join_shared(theirs, Duration::ZERO, soon()), Err(LinkError::Malformed(_))));
}
