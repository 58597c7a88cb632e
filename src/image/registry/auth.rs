//! Registry authentication: credentials (never printed), the `WWW-Authenticate` challenge, and
//! the bearer-token flow of the distribution token spec (realm, service, scopes; tokens cached
//! per scope set and fetched again when they expire or a request comes back 401).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use zeroize::Zeroizing;

/// A user name and password (or identity token). `Debug` shows the user name only.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    password: Zeroizing<String>,
}

impl Credentials {
    /// Credentials from a user name and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: Zeroizing::new(password.into()),
        }
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The `Authorization: Basic ...` value.
    pub fn basic_header(&self) -> Zeroizing<String> {
        let raw = Zeroizing::new(format!("{}:{}", self.username, self.password()));
        Zeroizing::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
        ))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// What a registry asked for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic authentication.
    Basic,
    /// A bearer token from `realm` (the distribution token spec).
    Bearer {
        /// The token endpoint URL.
        realm: String,
        /// The `service` parameter to send.
        service: Option<String>,
        /// The scope the registry said is needed, if any.
        scope: Option<String>,
        /// `error=` (for example `insufficient_scope`, `invalid_token`).
        error: Option<String>,
    },
}

/// Parse one `WWW-Authenticate` value (`Bearer realm="...",service="...",scope="..."` or
/// `Basic realm="..."`). Unknown schemes give `None`.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = match value.split_once(char::is_whitespace) {
        Some((s, r)) => (s, r),
        None => (value, ""),
    };
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
            error: get("error"),
        })
    } else {
        None
    }
}

/// `name=value` pairs separated by commas; values may be quoted strings with `\` escapes.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() && chars.peek().is_none() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        let name = name.trim().to_string();
        if !name.is_empty() {
            out.push((name, value.trim().to_string()));
        }
        if chars.peek().is_none() {
            return out;
        }
    }
}

/// The access a request needs: `repository:NAME:pull` or `repository:NAME:pull,push`, plus
/// `repository:OTHER:pull` for a cross-repository mount.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Scope(Vec<String>);

impl Scope {
    /// No scope (the `/v2/` ping, login).
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Pull access to one repository.
    pub fn pull(repository: &str) -> Self {
        Self(vec![format!("repository:{repository}:pull")])
    }

    /// Pull and push access to one repository.
    pub fn push(repository: &str) -> Self {
        Self(vec![format!("repository:{repository}:pull,push")])
    }

    /// This scope plus pull access to another repository.
    pub fn and_pull(mut self, repository: &str) -> Self {
        self.add(&format!("repository:{repository}:pull"));
        self
    }

    /// Add a scope string the registry asked for, unless it is already covered.
    pub fn add(&mut self, scope: &str) {
        if !self.0.iter().any(|s| s == scope) {
            self.0.push(scope.to_string());
            self.0.sort();
        }
    }

    /// The scope strings.
    pub fn items(&self) -> &[String] {
        &self.0
    }

    fn key(&self) -> String {
        self.0.join(" ")
    }
}

/// A bearer token and when it stops being used.
struct CachedToken {
    value: Zeroizing<String>,
    expires: Instant,
}

/// Tokens below this lifetime are treated as this long (docker's minimum).
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// A token is fetched again this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// What the client knows about a registry's authentication: the scheme it asked for and the
/// tokens it handed out.
#[derive(Default)]
pub struct AuthState {
    inner: Mutex<StateInner>,
}

#[derive(Default)]
struct StateInner {
    challenge: Option<Challenge>,
    tokens: HashMap<String, CachedToken>,
}

impl fmt::Debug for AuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("AuthState")
            .field("challenge", &inner.challenge)
            .field("tokens", &inner.tokens.len())
            .finish()
    }
}

/// What to send with a request.
#[derive(Debug)]
pub enum AuthPlan {
    /// Nothing known yet: send no `Authorization` header.
    Anonymous,
    /// Send this header value.
    Header(Zeroizing<String>),
    /// A token must be fetched first for this challenge.
    FetchToken(Challenge),
}

impl AuthState {
    /// Remember the scheme a registry asked for.
    pub fn set_challenge(&self, c: Challenge) {
        self.lock().challenge = Some(c);
    }

    /// The scheme the registry asked for, if it asked.
    pub fn challenge(&self) -> Option<Challenge> {
        self.lock().challenge.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StateInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What to send for a request needing `scope`.
    pub fn plan(&self, scope: &Scope, creds: Option<&Credentials>) -> AuthPlan {
        let inner = self.lock();
        match &inner.challenge {
            None => AuthPlan::Anonymous,
            Some(Challenge::Basic) => match creds {
                Some(c) => AuthPlan::Header(c.basic_header()),
                None => AuthPlan::Anonymous,
            },
            Some(c @ Challenge::Bearer { .. }) => match inner.tokens.get(&scope.key()) {
                Some(t) if t.expires > Instant::now() => {
                    AuthPlan::Header(Zeroizing::new(format!("Bearer {}", t.value.as_str())))
                }
                _ => AuthPlan::FetchToken(c.clone()),
            },
        }
    }

    /// Store a token for `scope`, valid for `lifetime` as the token server said.
    pub fn put_token(&self, scope: &Scope, token: Zeroizing<String>, lifetime: Duration) {
        let lifetime = lifetime.max(MIN_TOKEN_LIFETIME) - EXPIRY_MARGIN;
        self.lock().tokens.insert(
            scope.key(),
            CachedToken {
                value: token,
                expires: Instant::now() + lifetime,
            },
        );
    }

    /// Forget the token for `scope` (it was refused).
    pub fn drop_token(&self, scope: &Scope) {
        self.lock().tokens.remove(&scope.key());
    }
}

/// The answer of a token endpoint (`token` or the OAuth2 `access_token`).
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and its lifetime (60 s when the server does not say, as docker assumes).
    pub fn into_token(self) -> Option<(Zeroizing<String>, Duration)> {
        let value = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        let lifetime = Duration::from_secs(self.expires_in.unwrap_or(60));
        Some((Zeroizing::new(value), lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_with_quotes_commas_and_escapes() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
                scope: Some("repository:a/b:pull,push".into()),
                error: Some("insufficient_scope".into()),
            }
        );
        let c = parse_challenge(r#"bearer   realm="http://x/t\"q",  service=svc"#).unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "http://x/t\"q".into(),
                service: Some("svc".into()),
                scope: None,
                error: None
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "realm is required"
        );
    }

    #[test]
    fn credentials_never_show_the_password() {
        let c = Credentials::new("alice", "s3cret-pw");
        let dbg = format!("{c:?}");
        assert!(dbg.contains("alice") && !dbg.contains("s3cret"), "{dbg}");
        assert_eq!(c.basic_header().as_str(), "Basic YWxpY2U6czNjcmV0LXB3");
    }

    #[test]
    fn tokens_are_cached_per_scope_and_expire() {
        let state = AuthState::default();
        let scope = Scope::pull("app");
        assert!(matches!(state.plan(&scope, None), AuthPlan::Anonymous));
        state.set_challenge(Challenge::Bearer {
            realm: "http://t/token".into(),
            service: None,
            scope: None,
            error: None,
        });
        assert!(matches!(state.plan(&scope, None), AuthPlan::FetchToken(_)));
        state.put_token(
            &scope,
            Zeroizing::new("tok".into()),
            Duration::from_secs(300),
        );
        match state.plan(&scope, None) {
            AuthPlan::Header(h) => assert_eq!(h.as_str(), "Bearer tok"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            state.plan(&Scope::push("app"), None),
            AuthPlan::FetchToken(_)
        ));
        state.drop_token(&scope);
        assert!(matches!(state.plan(&scope, None), AuthPlan::FetchToken(_)));
        let mut s = Scope::push("app").and_pull("base");
        s.add("repository:base:pull");
        assert_eq!(
            s.items(),
            ["repository:app:pull,push", "repository:base:pull"]
        );
    }

    #[test]
    fn token_response_forms() {
        let r: TokenResponse = serde_json::from_str(r#"{"token":"a","expires_in":300}"#).unwrap();
        let (t, l) = r.into_token().unwrap();
        assert_eq!((t.as_str(), l.as_secs()), ("a", 300));
        let r: TokenResponse = serde_json::from_str(r#"{"access_token":"b"}"#).unwrap();
        let (t, l) = r.into_token().unwrap();
        assert_eq!((t.as_str(), l.as_secs()), ("b", 60));
        let r: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(r.into_token().is_none());
    }
}
