//! Batched UDP receive and send on Linux (`recvmmsg` / `sendmmsg`, through `nix`).
//!
//! Under load a listener finds several queries waiting; taking them in one system call
//! and sending their answers in another saves a kernel entry, a socket lookup and a
//! readiness check per packet. Profiles of `hallpass serve` put that per-call overhead at
//! about a tenth of a DNS worker's time. The work per packet (routing, delivery, waking
//! the client) is the kernel's either way.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::RawFd;

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};

/// Queries taken per receive call.
pub(crate) const BATCH: usize = 32;
/// Room for one query. A query (question plus OPT) is far smaller; anything larger is
/// reported as truncated and dropped.
pub(crate) const SLOT: usize = 4096;

/// One received datagram: its length in its slot, the sender, and whether the kernel had
/// to cut it to fit the slot.
#[derive(Clone, Copy)]
pub(crate) struct Received {
    pub len: usize,
    pub peer: Option<SocketAddr>,
    pub truncated: bool,
}

/// Receives up to [`BATCH`] datagrams without waiting, datagram `i` into
/// `buf[i * SLOT..]`. `WouldBlock` when none is waiting.
pub(crate) fn recv_batch(fd: RawFd, buf: &mut [u8], got: &mut Vec<Received>) -> io::Result<()> {
    recv(fd, buf, got, MsgFlags::MSG_DONTWAIT)
}

/// As [`recv_batch`], on a blocking socket: waits for the first datagram (up to the
/// socket's receive timeout, then `WouldBlock`), then takes what else is waiting.
pub(crate) fn recv_batch_waiting(
    fd: RawFd,
    buf: &mut [u8],
    got: &mut Vec<Received>,
) -> io::Result<()> {
    recv(fd, buf, got, MsgFlags::MSG_WAITFORONE)
}

fn recv(fd: RawFd, buf: &mut [u8], got: &mut Vec<Received>, flags: MsgFlags) -> io::Result<()> {
    got.clear();
    let mut slices: Vec<[IoSliceMut<'_>; 1]> = buf
        .chunks_exact_mut(SLOT)
        .take(BATCH)
        .map(|slot| [IoSliceMut::new(slot)])
        .collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(slices.len(), None);
    let results = recvmmsg(fd, &mut headers, slices.iter_mut(), flags, None)?;
    for m in results {
        got.push(Received {
            len: m.bytes.min(SLOT),
            peer: m.address.as_ref().and_then(to_std),
            truncated: m.flags.contains(MsgFlags::MSG_TRUNC),
        });
    }
    Ok(())
}

/// Sends `answers[i]` to `peers[i]` without waiting; returns how many went (a prefix).
/// `WouldBlock` when the socket buffer is full.
pub(crate) fn send_batch(
    fd: RawFd,
    answers: &[impl AsRef<[u8]>],
    peers: &[SocketAddr],
) -> io::Result<usize> {
    let slices: Vec<[IoSlice<'_>; 1]> =
        answers.iter().map(|a| [IoSlice::new(a.as_ref())]).collect();
    let addrs: Vec<Option<SockaddrStorage>> = peers
        .iter()
        .map(|p| Some(SockaddrStorage::from(*p)))
        .collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(slices.len(), None);
    let no_control: [ControlMessage<'_>; 0] = [];
    let sent = sendmmsg(
        fd,
        &mut headers,
        slices.iter(),
        &addrs,
        no_control,
        MsgFlags::MSG_DONTWAIT,
    )?;
    Ok(sent.count())
}

fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    addr.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_goes_out_and_comes_back_with_its_senders() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"one", server.local_addr().unwrap()).unwrap();
        a.send_to(&[7u8; SLOT + 10], server.local_addr().unwrap())
            .unwrap();
        let mut buf = vec![0u8; BATCH * SLOT];
        let mut got = Vec::new();
        // Loopback delivery is synchronous, so both are already queued.
        recv_batch(server.as_raw_fd(), &mut buf, &mut got).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(&buf[..got[0].len], b"one");
        assert_eq!(got[0].peer, Some(a.local_addr().unwrap()));
        assert!(!got[0].truncated);
        assert!(got[1].truncated);

        let err = recv_batch(server.as_raw_fd(), &mut buf, &mut got).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);

        let peer = a.local_addr().unwrap();
        let answers: [&[u8]; 2] = [b"x", b"yz"];
        let sent = send_batch(server.as_raw_fd(), &answers, &[peer, peer]).unwrap();
        assert_eq!(sent, 2);
        let mut r = [0u8; 8];
        assert_eq!(a.recv(&mut r).unwrap(), 1);
        assert_eq!(a.recv(&mut r).unwrap(), 2);
        assert_eq!(&r[..2], b"yz");
    }
}
