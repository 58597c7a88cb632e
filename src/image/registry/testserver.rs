//! A tiny in-process registry for unit tests: serves manifests and blobs of one repository
//! (with `Range`), records every request, and lets a test inject faults (wrong headers,
//! truncated bodies, error statuses, auth challenges) through a hook.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::image::digest::Digest;

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Path with query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Close the connection after this many body bytes (the full length is announced).
    pub cut_after: Option<usize>,
}

impl Reply {
    pub fn new(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
            cut_after: None,
        }
    }

    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What a hook decides: answer now, or let the repository answer.
pub type Hook = Box<dyn Fn(&Req, usize) -> Option<Reply> + Send + Sync>;

/// Content of the one repository served.
#[derive(Debug, Default, Clone)]
pub struct Content {
    /// tag or digest -> (media type, bytes)
    pub manifests: HashMap<String, (String, Vec<u8>)>,
    pub blobs: HashMap<Digest, Vec<u8>>,
}

impl Content {
    /// Add a manifest under its digest and, if given, a tag.
    pub fn manifest(&mut self, tag: Option<&str>, media_type: &str, bytes: &[u8]) -> Digest {
        let d = Digest::of_bytes(bytes);
        self.manifests
            .insert(d.to_string(), (media_type.into(), bytes.to_vec()));
        if let Some(t) = tag {
            self.manifests
                .insert(t.into(), (media_type.into(), bytes.to_vec()));
        }
        d
    }

    pub fn blob(&mut self, bytes: &[u8]) -> Digest {
        let d = Digest::of_bytes(bytes);
        self.blobs.insert(d.clone(), bytes.to_vec());
        d
    }
}

struct Shared {
    content: Mutex<Content>,
    hook: Mutex<Option<Hook>>,
    log: Mutex<Vec<Req>>,
    stop: AtomicBool,
}

/// A running mock registry on 127.0.0.1 (stopped on drop).
pub struct MockRegistry {
    pub addr: String,
    shared: Arc<Shared>,
}

impl MockRegistry {
    pub fn start(content: Content) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            content: Mutex::new(content),
            hook: Mutex::new(None),
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        Self { addr, shared }
    }

    /// Install a fault hook; it sees each request and its index in the log.
    pub fn hook(&self, f: impl Fn(&Req, usize) -> Option<Reply> + Send + Sync + 'static) {
        *self.shared.hook.lock().unwrap() = Some(Box::new(f));
    }

    pub fn content(&self) -> std::sync::MutexGuard<'_, Content> {
        self.shared.content.lock().unwrap()
    }

    pub fn log(&self) -> Vec<Req> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Requests whose path contains `needle`.
    pub fn requests(&self, needle: &str) -> Vec<Req> {
        self.log()
            .into_iter()
            .filter(|r| r.path.contains(needle))
            .collect()
    }
}

impl Drop for MockRegistry {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Req> {
    // A TLS client hello (the HTTPS probe of a loopback registry): not spoken here.
    if r.fill_buf().ok()?.first() == Some(&0x16) {
        return None;
    }
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut req = Req {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = req
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok())
    {
        let mut body = vec![0; len];
        r.read_exact(&mut body).ok()?;
        req.body = body;
    } else if req
        .header("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            req.body.extend_from_slice(&chunk[..n]);
        }
    }
    Some(req)
}

fn serve(conn: TcpStream, s: &Shared) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    let index = {
        let mut log = s.log.lock().unwrap();
        log.push(req.clone());
        log.len() - 1
    };
    let hooked = s.hook.lock().unwrap().as_ref().and_then(|h| h(&req, index));
    let reply = hooked.unwrap_or_else(|| answer(&s.content.lock().unwrap(), &req));
    let mut out = conn;
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    let mut has_len = false;
    for (k, v) in &reply.headers {
        has_len |= k.eq_ignore_ascii_case("content-length");
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    if req.method != "HEAD" {
        let end = reply
            .cut_after
            .unwrap_or(reply.body.len())
            .min(reply.body.len());
        let _ = out.write_all(&reply.body[..end]);
    }
    let _ = out.flush();
}

/// The repository's own answer: `/v2/`, manifests and blobs (with `Range`) of any repository.
pub fn answer(c: &Content, req: &Req) -> Reply {
    let path = req.path.split('?').next().unwrap_or("");
    if path == "/v2/" {
        return Reply::new(200, b"{}".to_vec());
    }
    if let Some((_, reference)) = path.split_once("/manifests/") {
        return match c.manifests.get(reference) {
            Some((mt, bytes)) => Reply::new(200, bytes.clone())
                .with("Content-Type", mt)
                .with("Docker-Content-Digest", Digest::of_bytes(bytes).as_str()),
            None => Reply::new(
                404,
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                    .to_vec(),
            ),
        };
    }
    if let Some((_, digest)) = path.split_once("/blobs/") {
        let Some(bytes) = Digest::parse(digest).ok().and_then(|d| c.blobs.get(&d)) else {
            return Reply::new(
                404,
                br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#
                    .to_vec(),
            );
        };
        if let Some(range) = req.header("range") {
            let start: usize = range
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap();
            if start >= bytes.len() {
                return Reply::new(416, Vec::new());
            }
            return Reply::new(206, bytes[start..].to_vec()).with(
                "Content-Range",
                &format!("bytes {start}-{}/{}", bytes.len() - 1, bytes.len()),
            );
        }
        return Reply::new(200, bytes.clone());
    }
    Reply::new(404, Vec::new())
}
