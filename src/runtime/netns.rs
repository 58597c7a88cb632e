//! `--network none`: bring up the loopback interface of a container's new network namespace
//! (libcontainer leaves it down), through one rtnetlink request from a short-lived thread.

use std::os::fd::AsFd;

use nix::sched::CloneFlags;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use super::error::{Result, RuntimeError};

/// Set `lo` up in the network namespace of process `pid`. The namespace is entered by a
/// separate thread (network namespaces are per thread), so the caller's stays untouched.
pub fn loopback_up(pid: i32) -> Result<()> {
    let path = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&path).map_err(|e| RuntimeError::io_at(&path, e))?;
    std::thread::scope(|s| {
        s.spawn(move || -> Result<()> {
            nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
                RuntimeError::io("failed to enter the container's network namespace", e)
            })?;
            set_link_up(1)
        })
        .join()
        .unwrap_or_else(|_| {
            Err(RuntimeError::io(
                "loopback setup thread panicked",
                std::io::Error::other("panic"),
            ))
        })
    })
}

/// RTM_NEWLINK with IFF_UP for interface `index` (the loopback is always 1 in a new namespace).
fn set_link_up(index: i32) -> Result<()> {
    const RTM_NEWLINK: u16 = 16;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    const NLMSG_ERROR: u16 = 2;
    const IFF_UP: u32 = 1;
    let err = |e: std::io::Error| RuntimeError::io("failed to bring up the loopback interface", e);

    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes()); // nlmsg_len
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes()); // nlmsg_type
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes()); // nlmsg_flags
    msg.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
    msg.extend_from_slice(&[0, 0]); // ifi_family AF_UNSPEC, padding
    msg.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    msg.extend_from_slice(&index.to_ne_bytes()); // ifi_index
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_flags
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_change

    let sock = rustix::net::socket(AddressFamily::NETLINK, SocketType::RAW, None)
        .map_err(|e| err(e.into()))?;
    rustix::net::send(&sock, &msg, SendFlags::empty()).map_err(|e| err(e.into()))?;
    let mut buf = [0u8; 1024];
    let (n, _) =
        rustix::net::recv(&sock, &mut buf[..], RecvFlags::empty()).map_err(|e| err(e.into()))?;
    if n < 20 || u16::from_ne_bytes([buf[4], buf[5]]) != NLMSG_ERROR {
        return Err(err(std::io::Error::other("unexpected netlink answer")));
    }
    let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    if code != 0 {
        return Err(err(std::io::Error::from_raw_os_error(-code)));
    }
    Ok(())
}
