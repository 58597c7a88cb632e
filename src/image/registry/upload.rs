//! Blob uploads in constant memory: HEAD to skip what the registry has, a cross-repository
//! mount (`?mount=&from=`) when the blob is known to be in another repository of the same
//! registry, else POST for a session and one streaming PUT (or PATCH chunks then PUT) straight
//! from the verified file. A failed upload starts again with a new session.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use ureq::typestate::WithBody;
use ureq::{Agent, SendBody};

use super::auth::Scope;
use super::client::{Client, Retry};
use super::progress::{BlobOutcome, Progress};
use crate::image::digest::Digest;
use crate::image::error::{ImageError, Result};
use crate::image::layout::Layout;
use crate::image::manifest::Descriptor;

/// A reader that reports how much went through it and stops when the push is cancelled.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    digest: &'a Digest,
    progress: &'a dyn Progress,
    cancel: &'a AtomicBool,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.blob_progress(self.digest, self.done);
        Ok(n)
    }
}

/// `location` with one more query parameter.
fn with_query(location: &str, key: &str, value: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}{key}={value}")
}

fn location(
    client: &Client,
    resp: &ureq::http::Response<ureq::Body>,
    what: &str,
) -> Result<String> {
    let loc = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| client.protocol(format!("{what}: answer without a Location header")))?;
    client.absolute(loc)
}

impl Client {
    /// HEAD a blob: its size if the registry has it in `repository`, `None` on 404.
    pub fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<Option<u64>> {
        let what = format!("blob {digest} of {repository}");
        let resp = self.send(
            &what,
            &Scope::push(repository),
            Retry::Transient,
            |agent, base, auth| {
                let mut req = agent.head(format!("{base}/v2/{repository}/blobs/{digest}"));
                req = auth.on(req);
                req.call()
            },
        )?;
        match resp.status().as_u16() {
            200 => Ok(Some(
                resp.headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            404 => Ok(None),
            _ => Err(self.status_error(&what, resp)),
        }
    }

    /// Start an upload session, or mount `digest` from repository `from`: `Ok(None)` when the
    /// mount worked, else the session URL.
    pub fn start_upload(
        &self,
        repository: &str,
        mount: Option<(&Digest, &str)>,
    ) -> Result<Option<String>> {
        let what = format!("upload to {repository}");
        let scope = match mount {
            Some((_, from)) => Scope::push(repository).and_pull(from),
            None => Scope::push(repository),
        };
        let resp = self.send(&what, &scope, Retry::Transient, |agent, base, auth| {
            let mut req = agent.post(format!("{base}/v2/{repository}/blobs/uploads/"));
            if let Some((digest, from)) = mount {
                req = req.query("mount", digest.as_str()).query("from", from);
            }
            req = auth.on(req);
            req.header("Content-Length", "0").send_empty()
        })?;
        match resp.status().as_u16() {
            201 if mount.is_some() => Ok(None),
            202 => Ok(Some(location(self, &resp, &what)?)),
            _ => Err(self.status_error(&what, resp)),
        }
    }

    /// Send `body` once with the request `make` builds (PUT or PATCH). A request refused
    /// with 401 cannot send the consumed body again: the session is spent, and the error makes
    /// the caller start a new one (with the token now fetched).
    fn send_stream(
        &self,
        what: &str,
        repository: &str,
        body: &mut dyn Read,
        make: impl Fn(&Agent) -> ureq::RequestBuilder<WithBody>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut body = Some(body);
        self.send(
            what,
            &Scope::push(repository),
            Retry::Never,
            |agent, _, auth| {
                let req = auth.on(make(agent).header("Content-Type", "application/octet-stream"));
                match body.take() {
                    Some(b) => req.send(SendBody::from_reader(b)),
                    None => Err(ureq::Error::Io(io::Error::other(
                        "upload refused, starting again",
                    ))),
                }
            },
        )
    }

    /// Send the whole blob with one streaming PUT to the session URL.
    fn put_whole(
        &self,
        repository: &str,
        session: &str,
        desc: &Descriptor,
        body: &mut dyn Read,
    ) -> Result<()> {
        let what = format!("upload of blob {} to {repository}", desc.digest);
        let url = with_query(session, "digest", desc.digest.as_str());
        let size = desc.size.to_string();
        let resp = self.send_stream(&what, repository, body, |agent| {
            agent.put(&url).header("Content-Length", &size)
        })?;
        if resp.status().as_u16() != 201 {
            return Err(self.status_error(&what, resp));
        }
        Ok(())
    }

    /// Send the blob in PATCH chunks of `chunk` bytes, then close the session with a PUT.
    fn put_chunked(
        &self,
        repository: &str,
        session: &str,
        desc: &Descriptor,
        body: &mut dyn Read,
        chunk: u64,
    ) -> Result<()> {
        let what = format!("upload of blob {} to {repository}", desc.digest);
        let mut url = session.to_string();
        let mut sent = 0u64;
        while sent < desc.size {
            let len = chunk.min(desc.size - sent);
            let range = format!("{sent}-{}", sent + len - 1);
            let length = len.to_string();
            let mut part = body.take(len);
            let resp = self.send_stream(&what, repository, &mut part, |agent| {
                agent
                    .patch(&url)
                    .header("Content-Range", &range)
                    .header("Content-Length", &length)
            })?;
            if resp.status().as_u16() != 202 {
                return Err(self.status_error(&what, resp));
            }
            url = location(self, &resp, &what)?;
            sent += len;
        }
        let close = with_query(&url, "digest", desc.digest.as_str());
        let resp = self.send(
            &what,
            &Scope::push(repository),
            Retry::Transient,
            |agent, _, auth| {
                let mut req = agent.put(&close).header("Content-Length", "0");
                req = auth.on(req);
                req.send_empty()
            },
        )?;
        if resp.status().as_u16() != 201 {
            return Err(self.status_error(&what, resp));
        }
        Ok(())
    }
}

/// Make blob `desc` of `layout` present in `repository`: skip, mount from `mount_from`, or
/// upload it (verified against its digest while it is read).
pub fn push_blob(
    client: &Client,
    repository: &str,
    layout: &Layout,
    desc: &Descriptor,
    mount_from: Option<&str>,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<BlobOutcome> {
    let digest = &desc.digest;
    if client.blob_exists(repository, digest)? == Some(desc.size) {
        progress.blob_finished(digest, BlobOutcome::AlreadyThere);
        return Ok(BlobOutcome::AlreadyThere);
    }
    let what = format!("blob {digest}");
    let policy = client.options().retry;
    let mut attempt = 0u32;
    let mut mount = mount_from;
    progress.blob_started(digest, desc.size, 0);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(ImageError::Cancelled);
        }
        attempt += 1;
        let Some(session) = client.start_upload(repository, mount.map(|from| (digest, from)))?
        else {
            progress.blob_finished(digest, BlobOutcome::Mounted);
            return Ok(BlobOutcome::Mounted);
        };
        // A mount that did not work is not asked for again.
        mount = None;
        let mut reader = layout.open_blob(desc, &what)?;
        let mut body = Counting {
            inner: &mut reader,
            done: 0,
            digest,
            progress,
            cancel,
        };
        let sent = match client.options().upload_chunk_size {
            Some(chunk) if chunk > 0 && desc.size > chunk => {
                client.put_chunked(repository, &session, desc, &mut body, chunk)
            }
            _ => client.put_whole(repository, &session, desc, &mut body),
        };
        // A local blob that does not verify is the error to report, not what the upload saw.
        if let Some(e) = reader.failure() {
            return Err(e);
        }
        match sent {
            Ok(()) => {
                progress.blob_finished(digest, BlobOutcome::Transferred);
                return Ok(BlobOutcome::Transferred);
            }
            Err(ImageError::RegistryUnreachable { .. }) if cancel.load(Ordering::Relaxed) => {
                return Err(ImageError::Cancelled)
            }
            Err(
                e @ (ImageError::RegistryUnreachable { .. } | ImageError::RegistryStatus { .. }),
            ) if attempt < policy.attempts && transient(&e) => {
                progress.blob_progress(digest, 0);
                let delay = policy.delay(attempt);
                client.notify(&format!(
                    "{what}: {e}; uploading again in {:.1}s (attempt {} of {})",
                    delay.as_secs_f64(),
                    attempt + 1,
                    policy.attempts
                ));
                std::thread::sleep(delay);
            }
            Err(e) => return Err(e),
        }
    }
}

/// True for upload failures worth a new session.
fn transient(e: &ImageError) -> bool {
    match e {
        ImageError::RegistryUnreachable { .. } => true,
        ImageError::RegistryStatus { status, .. } => super::retry::is_transient_status(*status),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_urls_get_the_digest_appended() {
        assert_eq!(
            with_query("http://r/v2/a/blobs/uploads/x", "digest", "sha256:1"),
            "http://r/v2/a/blobs/uploads/x?digest=sha256:1"
        );
        assert_eq!(
            with_query("http://r/u?_state=abc", "digest", "sha256:1"),
            "http://r/u?_state=abc&digest=sha256:1"
        );
    }
}
