//! The gRPC keyprovider transport: one `KeyProviderService` call on a runtime made for it.
//!
//! ocicrypt's `keyprovider.proto` has one message each way, field 1 of type `bytes`, holding the
//! same JSON the cmd protocol writes on stdin and stdout. The messages are written by hand here
//! (no protoc, no build step). Every call gets its own tokio `current_thread` runtime, dropped
//! before returning, so rrun stays single-threaded when it later creates containers.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};
use zeroize::{Zeroize, Zeroizing};

use super::ENV_TIMEOUT;

/// The rpc of `keyprovider.KeyProviderService` to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rpc {
    /// `WrapKey`: the keywrap request.
    WrapKey,
    /// `UnWrapKey`: the keyunwrap request.
    UnWrapKey,
}

impl Rpc {
    fn path(self) -> &'static str {
        match self {
            Self::WrapKey => "/keyprovider.KeyProviderService/WrapKey",
            Self::UnWrapKey => "/keyprovider.KeyProviderService/UnWrapKey",
        }
    }
}

/// `keyProviderKeyWrapProtocolInput { bytes KeyProviderKeyWrapProtocolInput = 1; }`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtocolInput {
    #[prost(bytes = "vec", tag = "1")]
    json: Vec<u8>,
}

/// `keyProviderKeyWrapProtocolOutput { bytes KeyProviderKeyWrapProtocolOutput = 1; }`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtocolOutput {
    #[prost(bytes = "vec", tag = "1")]
    json: Vec<u8>,
}

// Both carry private options (the layer key) on one of the two calls.
impl Drop for ProtocolInput {
    fn drop(&mut self) {
        self.json.zeroize();
    }
}

impl Drop for ProtocolOutput {
    fn drop(&mut self) {
        self.json.zeroize();
    }
}

/// Where a provider listens, from the config's `"grpc"` string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `host:port` (or `dns:///host:port`, `http://host:port`), plain HTTP/2.
    Tcp(Uri),
    /// `unix:PATH` or `unix:///PATH`.
    Unix(PathBuf),
}

/// Parse an address as grpc-go's `Dial` takes it; an error says which forms work.
fn target(address: &str) -> Result<Target, String> {
    let a = address.trim();
    if let Some(path) = a.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(format!(
                "grpc address {address:?} names no socket: write unix:///path/to.sock"
            ));
        }
        return Ok(Target::Unix(path.into()));
    }
    if a.starts_with("https://") {
        return Err(format!(
            "grpc address {address:?}: TLS is not supported by this rrun build; use host:port \
             on a trusted network or a unix socket"
        ));
    }
    let hostport = a
        .strip_prefix("dns:///")
        .or_else(|| a.strip_prefix("passthrough:///"))
        .or_else(|| a.strip_prefix("http://"))
        .unwrap_or(a);
    let bad =
        || format!("invalid grpc address {address:?}: write host:port or unix:///path/to.sock");
    if hostport.is_empty() || hostport.contains('/') || !hostport.contains(':') {
        return Err(bad());
    }
    format!("http://{hostport}")
        .parse::<Uri>()
        .map(Target::Tcp)
        .map_err(|_| bad())
}

/// Send `request` (the protocol JSON) to `rpc` at `address` and return the answer JSON, within
/// `limit`; failures are one line naming the address.
pub(super) fn call(
    address: &str,
    rpc: Rpc,
    request: &[u8],
    limit: Duration,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let target = target(address)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the grpc client: {e}"))?;
    let input = ProtocolInput {
        json: request.to_vec(),
    };
    let answer = runtime
        .block_on(async { tokio::time::timeout(limit, exchange(&target, rpc, input)).await });
    // A name lookup still running on the blocking pool is abandoned, not waited for.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match answer {
        Ok(Ok(json)) => Ok(json),
        Ok(Err(e)) => Err(format!("grpc {address}: {e}")),
        Err(_) => Err(format!(
            "no answer from grpc {address} within {:.1} s (raise {ENV_TIMEOUT} if it needs \
             longer)",
            limit.as_secs_f64()
        )),
    }
}

async fn connect(target: &Target) -> Result<Channel, tonic::transport::Error> {
    match target {
        Target::Tcp(uri) => Endpoint::from(uri.clone()).connect().await,
        Target::Unix(path) => {
            let path = path.clone();
            // The URI is a placeholder: the connector ignores it and dials the socket.
            Endpoint::from_static("http://localhost")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                }))
                .await
        }
    }
}

async fn exchange(
    target: &Target,
    rpc: Rpc,
    input: ProtocolInput,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let channel = connect(target).await.map_err(|e| {
        format!(
            "cannot connect ({}); check that the provider is running and the \"grpc\" address \
             in {}",
            chain(&e),
            super::ENV_CONFIG
        )
    })?;
    let mut client = tonic::client::Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|e| format!("cannot connect ({})", chain(&e)))?;
    let codec = tonic::codec::ProstCodec::<ProtocolInput, ProtocolOutput>::default();
    let mut answer = client
        .unary(
            tonic::Request::new(input),
            PathAndQuery::from_static(rpc.path()),
            codec,
        )
        .await
        .map_err(|s| {
            let message = s.message().lines().next().unwrap_or_default();
            format!(
                "the provider refused {rpc:?} with grpc status {:?}: {message}",
                s.code()
            )
        })?
        .into_inner();
    Ok(Zeroizing::new(std::mem::take(&mut answer.json)))
}

/// An error and its causes on one line, lower-case.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_the_forms_grpc_go_dials() {
        for (a, want) in [
            ("127.0.0.1:5000", "http://127.0.0.1:5000/"),
            ("localhost:7", "http://localhost:7/"),
            ("dns:///kms.local:443", "http://kms.local:443/"),
            ("http://[::1]:9", "http://[::1]:9/"),
        ] {
            assert_eq!(target(a), Ok(Target::Tcp(want.parse().unwrap())), "{a}");
        }
        assert_eq!(
            target("unix:///run/kp.sock"),
            Ok(Target::Unix("/run/kp.sock".into()))
        );
        assert_eq!(target("unix:kp.sock"), Ok(Target::Unix("kp.sock".into())));
        for bad in ["", "unix:", "kms", "https://kms:443", "http://a:1/x"] {
            let e = target(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn messages_are_field_one_bytes() {
        use prost::Message as _;
        let m = ProtocolInput {
            json: b"{}".to_vec(),
        };
        assert_eq!(m.encode_to_vec(), [0x0a, 2, b'{', b'}']);
        let out = ProtocolOutput::decode(&[0x0a, 1, b'x'][..]).unwrap();
        assert_eq!(out.json, b"x");
    }

    #[test]
    fn nothing_listening_is_one_line_naming_the_address() {
        // Port 1 on loopback: nothing listens there in a test environment.
        let e = call("127.0.0.1:1", Rpc::WrapKey, b"{}", Duration::from_secs(5)).unwrap_err();
        assert!(e.starts_with("grpc 127.0.0.1:1: cannot connect"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let sock = format!("unix://{}/none.sock", dir.path().display());
        let e = call(&sock, Rpc::UnWrapKey, b"{}", Duration::from_secs(5)).unwrap_err();
        assert!(e.contains("cannot connect") && e.contains(&sock), "{e}");
    }

    #[test]
    fn a_silent_listener_times_out() {
        // Accepts the connection (the backlog) but never speaks HTTP/2.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let e = call(&addr, Rpc::WrapKey, b"{}", Duration::from_millis(300)).unwrap_err();
        assert!(
            e.contains("no answer from grpc") && e.contains("0.3 s"),
            "{e}"
        );
    }

    fn threads() -> usize {
        std::fs::read_dir("/proc/self/task").unwrap().count()
    }

    #[test]
    fn no_thread_outlives_a_call() {
        // Other tests run on threads of their own: count in a child running only this test.
        const CHILD: &str = "RRUN_GRPC_THREAD_CHECK";
        if std::env::var_os(CHILD).is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "--test-threads=1", "--nocapture"])
                .arg("crypto::keywrap::keyprovider::grpc::tests::no_thread_outlives_a_call")
                .env(CHILD, "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && text.contains("1 passed"), "{text}");
            return;
        }
        let before = threads();
        // A host name (resolved on tokio's blocking pool), a refused port and a silent listener.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent = format!("localhost:{}", l.local_addr().unwrap().port());
        for addr in ["localhost:1", silent.as_str()] {
            let e = call(addr, Rpc::WrapKey, b"{}", Duration::from_millis(300)).unwrap_err();
            assert!(e.contains(addr), "{e}");
            assert_eq!(threads(), before, "after calling {addr}");
        }
    }
}
