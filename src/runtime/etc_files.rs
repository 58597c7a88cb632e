//! The /etc/hosts, /etc/hostname and /etc/resolv.conf rrun writes for a container.

use std::path::Path;

use super::error::{Result, RuntimeError};
use super::options::NetworkMode;
use super::spec::EtcFiles;

/// Write the three files into the container's state directory.
pub fn write(dir: &Path, hostname: &str, network: NetworkMode) -> Result<EtcFiles> {
    let files = EtcFiles {
        hosts: dir.join("hosts"),
        hostname: dir.join("hostname"),
        resolv_conf: dir.join("resolv.conf"),
    };
    let hosts = match network {
        NetworkMode::Host => std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
        NetworkMode::None => format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
        ),
    };
    let resolv = resolv_conf(
        &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        network,
    );
    for (path, text) in [
        (&files.hosts, hosts),
        (&files.hostname, format!("{hostname}\n")),
        (&files.resolv_conf, resolv),
    ] {
        std::fs::write(path, text).map_err(|e| RuntimeError::io_at(path, e))?;
    }
    Ok(files)
}

/// The container's resolv.conf: the host's, without loopback name servers unless the container
/// shares the host's network (a loopback resolver of the host is unreachable from a new
/// network namespace).
pub fn resolv_conf(host: &str, network: NetworkMode) -> String {
    if network == NetworkMode::Host {
        return host.to_owned();
    }
    host.lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver")
                && w.next()
                    .is_some_and(|a| a.starts_with("127.") || a == "::1"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_resolvers_are_dropped_without_host_network() {
        let host =
            "search example.org\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\n";
        assert_eq!(
            resolv_conf(host, NetworkMode::None),
            "search example.org\nnameserver 10.0.0.1\n"
        );
        assert_eq!(resolv_conf(host, NetworkMode::Host), host);
    }

    #[test]
    fn files_are_written() {
        let d = tempfile::tempdir().unwrap();
        let f = write(d.path(), "box1", NetworkMode::None).unwrap();
        assert_eq!(std::fs::read_to_string(f.hostname).unwrap(), "box1\n");
        assert!(std::fs::read_to_string(f.hosts)
            .unwrap()
            .contains("127.0.1.1\tbox1"));
    }
}
