//! Batched sends: the copies of one forwarded packet leave the loop's socket in one system
//! call (`sendmmsg` on Linux) instead of one `sendto` each.
//!
//! A packet forwarded to N subscribers becomes N datagrams to N addresses. The loop queues
//! them as each subscriber connection encrypts its copy, then sends them together. Datagrams
//! are moved, not copied. A datagram the socket refuses (its buffer is full) is dropped and
//! counted, as the network would drop it: blocking would stall every conference of the loop.

use std::net::SocketAddr;

use bytes::BytesMut;
use rtc::peer_connection::RTCPeerConnection;
use rtc::sansio::Protocol;
use tokio::net::UdpSocket;

/// The datagrams waiting to be sent, with their destinations.
#[derive(Default)]
pub(crate) struct SendBatch {
    datagrams: Vec<(BytesMut, SocketAddr)>,
    /// Buffers of sent datagrams, kept for [`SendBatch::push_with`]: a forwarded copy is
    /// written into one, so the loop allocates nothing per copy once warm.
    spare: Vec<BytesMut>,
}

/// The size a spare buffer is made with: an Ethernet MTU holds any datagram the loop sends.
const DATAGRAM: usize = 1500;

/// Spare buffers kept at most (the most datagrams one forwarded packet has needed so far
/// are kept, up to this many).
const SPARE: usize = 1024;

impl SendBatch {
    /// Takes every datagram a connection has queued.
    pub(crate) fn queue(&mut self, pc: &mut RTCPeerConnection) {
        while let Some(datagram) = pc.poll_write() {
            self.datagrams
                .push((datagram.message, datagram.transport.peer_addr));
        }
    }

    /// Queues a datagram to `to` that `fill` writes into an empty buffer. Nothing is queued
    /// if `fill` fails.
    pub(crate) fn push_with<E>(
        &mut self,
        to: SocketAddr,
        fill: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut buf = self
            .spare
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(DATAGRAM));
        match fill(&mut buf) {
            Ok(()) => {
                self.datagrams.push((buf, to));
                Ok(())
            }
            Err(e) => {
                buf.clear();
                self.spare.push(buf);
                Err(e)
            }
        }
    }

    /// Sends what is queued; returns how many datagrams were dropped.
    pub(crate) fn send(&mut self, socket: &UdpSocket) -> usize {
        if self.datagrams.is_empty() {
            return 0;
        }
        let dropped = send(socket, &self.datagrams);
        for (mut buf, _) in self.datagrams.drain(..) {
            if self.spare.len() < SPARE && buf.capacity() >= DATAGRAM {
                buf.clear();
                self.spare.push(buf);
            }
        }
        dropped
    }

    #[cfg(test)]
    pub(crate) fn take_for_test(&mut self) -> Vec<(BytesMut, SocketAddr)> {
        std::mem::take(&mut self.datagrams)
    }
}

#[cfg(target_os = "linux")]
fn send(socket: &UdpSocket, datagrams: &[(BytesMut, SocketAddr)]) -> usize {
    datagrams
        .chunks(linux::CHUNK)
        .map(|chunk| linux::send_chunk(socket, chunk))
        .sum()
}

#[cfg(not(target_os = "linux"))]
fn send(socket: &UdpSocket, datagrams: &[(BytesMut, SocketAddr)]) -> usize {
    datagrams
        .iter()
        .filter(|(bytes, to)| socket.try_send_to(bytes, *to).is_err())
        .count()
}

// The crate's one use of `unsafe`: building `sendmmsg`'s C headers.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod linux {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;

    use bytes::BytesMut;
    use tokio::io::Interest;
    use tokio::net::UdpSocket;

    /// Datagrams per `sendmmsg` call; the headers for them live on the stack (about 7 KiB).
    pub(super) const CHUNK: usize = 32;

    /// Sends up to [`CHUNK`] datagrams; returns how many were dropped.
    pub(super) fn send_chunk(socket: &UdpSocket, datagrams: &[(BytesMut, SocketAddr)]) -> usize {
        debug_assert!(datagrams.len() <= CHUNK);
        let n = datagrams.len();
        // SAFETY: all-zero bytes are a valid value of these plain C structs.
        let mut names: [libc::sockaddr_storage; CHUNK] = unsafe { zeroed() };
        let mut iovecs: [libc::iovec; CHUNK] = unsafe { zeroed() };
        let mut headers: [libc::mmsghdr; CHUNK] = unsafe { zeroed() };
        for (i, (bytes, to)) in datagrams.iter().enumerate() {
            let name_len = write_name(to, &mut names[i]);
            iovecs[i] = libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            };
            let header = &mut headers[i].msg_hdr;
            header.msg_name = (&raw mut names[i]).cast();
            header.msg_namelen = name_len;
            header.msg_iov = &raw mut iovecs[i];
            header.msg_iovlen = 1;
        }
        let fd = socket.as_raw_fd();
        let mut done = 0;
        let mut dropped = 0;
        while done < n {
            let rest = &mut headers[done..n];
            let sent = socket.try_io(Interest::WRITABLE, || {
                // SAFETY: `rest` holds `rest.len()` initialised headers whose names and
                // buffers (`names`, `iovecs`, `datagrams`) outlive the call.
                let sent =
                    unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, 0) };
                if sent < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(sent as usize)
                }
            });
            match sent {
                Ok(0) => {
                    dropped += n - done;
                    break;
                }
                Ok(sent) => done += sent,
                // The socket's buffer is full: the rest are dropped.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    dropped += n - done;
                    break;
                }
                // The first datagram was refused (an unreachable address, say): only it is.
                Err(_) => {
                    dropped += 1;
                    done += 1;
                }
            }
        }
        dropped
    }

    /// Writes `addr` as a C socket address; returns its length.
    fn write_name(addr: &SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
        match addr {
            SocketAddr::V4(a) => {
                let name = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is large and aligned enough for any socket address.
                unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), name) };
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                // SAFETY: all-zero bytes are a valid sockaddr_in6.
                let mut name: libc::sockaddr_in6 = unsafe { zeroed() };
                name.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                name.sin6_port = a.port().to_be();
                name.sin6_flowinfo = a.flowinfo();
                name.sin6_addr = libc::in6_addr {
                    s6_addr: a.ip().octets(),
                };
                name.sin6_scope_id = a.scope_id();
                // SAFETY: as above.
                unsafe { std::ptr::write((storage as *mut libc::sockaddr_storage).cast(), name) };
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_datagram_reaches_its_own_address_in_order() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let mut receivers = Vec::new();
        for _ in 0..3 {
            receivers.push(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        }
        let mut batch = SendBatch::default();
        // More than one chunk, spread over three receivers.
        for i in 0..70u8 {
            let to = receivers[usize::from(i) % 3].local_addr().expect("addr");
            batch.datagrams.push((BytesMut::from(&[i, i, i][..]), to));
        }
        sender.writable().await.expect("writable");
        assert_eq!(batch.send(&sender), 0);
        assert!(batch.datagrams.is_empty());
        for (r, receiver) in receivers.iter().enumerate() {
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            while let Ok(Ok((len, from))) = tokio::time::timeout(
                std::time::Duration::from_millis(200),
                receiver.recv_from(&mut buf),
            )
            .await
            {
                assert_eq!(from, sender.local_addr().expect("addr"));
                assert_eq!(len, 3);
                got.push(buf[0]);
            }
            let want: Vec<u8> = (0..70u8).filter(|i| usize::from(*i) % 3 == r).collect();
            assert_eq!(got, want);
        }
    }

    #[tokio::test]
    async fn a_sent_buffer_is_written_again_and_a_failed_fill_queues_nothing() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let receiver = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let to = receiver.local_addr().expect("addr");
        let mut batch = SendBatch::default();
        let fill = |b: &mut BytesMut| {
            b.extend_from_slice(b"abc");
            Ok::<(), ()>(())
        };
        batch.push_with(to, fill).expect("queued");
        let first = batch.datagrams[0].0.as_ptr();
        sender.writable().await.expect("writable");
        assert_eq!(batch.send(&sender), 0);
        batch.push_with(to, fill).expect("queued");
        assert_eq!(batch.datagrams[0].0.as_ptr(), first, "the same buffer");
        assert_eq!(
            &batch.datagrams[0].0[..],
            b"abc",
            "emptied before it was written"
        );
        assert!(batch.push_with(to, |_| Err(())).is_err());
        assert_eq!(batch.datagrams.len(), 1, "a failed fill queues nothing");
    }

    #[tokio::test]
    async fn a_refused_datagram_costs_only_itself() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let receiver = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let to = receiver.local_addr().expect("addr");
        let mut batch = SendBatch::default();
        batch.datagrams.push((BytesMut::from(&b"a"[..]), to));
        // An IPv6 destination from an IPv4 socket is refused by the kernel.
        batch
            .datagrams
            .push((BytesMut::from(&b"x"[..]), "[::1]:9".parse().expect("addr")));
        batch.datagrams.push((BytesMut::from(&b"b"[..]), to));
        sender.writable().await.expect("writable");
        assert_eq!(batch.send(&sender), 1);
        assert!(
            batch.spare.is_empty(),
            "buffers too small to reuse are not kept"
        );
        let mut buf = [0u8; 4];
        for want in [b'a', b'b'] {
            let (len, _) = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                receiver.recv_from(&mut buf),
            )
            .await
            .expect("in time")
            .expect("received");
            assert_eq!(&buf[..len], &[want]);
        }
    }
}
