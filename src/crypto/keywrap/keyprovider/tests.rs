//! Unit tests of the keyprovider wrapper: config parsing, the request and response JSON, and
//! running cmd providers (made of `/bin/sh` scripts) with their failures.

use std::path::Path;

use super::*;
use crate::crypto::config::{DecryptConfig, EncryptConfig, Recipient};

fn config(json: &str) -> Result<ProviderConfig> {
    ProviderConfig::parse(json.as_bytes(), Path::new("/etc/kp.json"))
}

/// A provider running `script` with `/bin/sh -c`.
fn sh(name: &str, script: &str) -> Provider {
    Provider::new(
        name,
        Transport::Cmd {
            path: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
        },
    )
}

fn key(provider: Provider, param: &str) -> ProviderKey {
    ProviderKey {
        provider,
        param: param.as_bytes().to_vec(),
    }
}

#[test]
fn config_reads_cmd_and_grpc_providers() {
    let c = config(
        r#"{"key-providers": {
            "kms": {"cmd": {"path": "/usr/bin/kp", "args": ["-v"]}},
            "remote": {"grpc": "127.0.0.1:50000"}
        }}"#,
    )
    .unwrap();
    assert_eq!(
        c.get("kms").unwrap().transport(),
        &Transport::Cmd {
            path: "/usr/bin/kp".into(),
            args: vec!["-v".into()]
        }
    );
    assert_eq!(
        c.get("remote").unwrap().transport(),
        &Transport::Grpc {
            address: "127.0.0.1:50000".into()
        }
    );
    assert_eq!(
        c.get("kms").unwrap().annotation_id(),
        "org.opencontainers.image.enc.keys.provider.kms"
    );
}

#[test]
fn config_mistakes_say_how_to_fix_them() {
    for (json, want) in [
        ("nope", "not JSON"),
        ("{}", "no \"key-providers\""),
        (r#"{"key-providers": []}"#, "object of providers"),
        (
            r#"{"key-providers": {"a": {"path": "/x"}}}"#,
            "inside \"cmd\"",
        ),
        (
            r#"{"key-providers": {"a": {"cmd": {}}}}"#,
            "needs a \"path\"",
        ),
        (
            r#"{"key-providers": {"a": {"cmd": {"path": "/x", "args": "-v"}}}}"#,
            "list of strings",
        ),
        (
            r#"{"key-providers": {"a": {"ttrpc": "unix:///x"}}}"#,
            "ocicrypt-rs only",
        ),
        (
            r#"{"key-providers": {"a:b": {"grpc": "x:1"}}}"#,
            "provider name",
        ),
        (
            r#"{"key-providers": {"a": {"grpc": "x:1", "grpc-tls": {"root-ca-file": "/ca"}}}}"#,
            "grpc-tls",
        ),
    ] {
        let err = config(json).unwrap_err().to_string();
        assert!(err.contains(want), "{json}: {err}");
        assert!(
            err.starts_with("/etc/kp.json: invalid keyprovider config"),
            "{err}"
        );
    }
}

#[test]
fn provider_keys_resolve_names_in_the_config() {
    let c = config(r#"{"key-providers": {"kms": {"cmd": {"path": "/bin/true"}}}}"#).unwrap();
    let k = ProviderKey::parse("kms", Some(&c)).unwrap();
    assert_eq!(k.param(), ENABLED.as_bytes());
    let k = ProviderKey::parse("kms:keyid=kbs:///a::alg=A256GCM", Some(&c)).unwrap();
    assert_eq!(k.param(), b"keyid=kbs:///a::alg=A256GCM");
    let err = ProviderKey::parse("other", Some(&c))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("configures no provider \"other\" (it has: kms)"),
        "{err}"
    );
    let err = ProviderKey::parse("kms", None).unwrap_err().to_string();
    assert!(err.contains("set OCICRYPT_KEYPROVIDER_CONFIG"), "{err}");
    let err = ProviderKey::parse(":x", Some(&c)).unwrap_err().to_string();
    assert!(err.contains("provider name is missing"), "{err}");
}

#[test]
fn requests_have_ocicrypt_shape() {
    let p = sh("kms", "true");
    let a = key(p.clone(), "k1");
    let b = key(p, ENABLED);
    let req: Value = serde_json::from_slice(&wrap_request(&[&a, &b], b"{\"symkey\":1}")).unwrap();
    assert_eq!(req["op"], "keywrap");
    assert_eq!(
        req["keywrapparams"]["ec"]["Parameters"]["kms"],
        json!([encode_b64(b"k1"), encode_b64(b"Enabled")])
    );
    assert_eq!(
        req["keywrapparams"]["ec"]["DecryptConfig"],
        json!({"Parameters": {}})
    );
    assert_eq!(
        req["keywrapparams"]["optsdata"],
        encode_b64(b"{\"symkey\":1}")
    );
    let req: Value = serde_json::from_slice(&unwrap_request(&[&a], b"wrapped")).unwrap();
    assert_eq!(req["op"], "keyunwrap");
    assert_eq!(req["keyunwrapparams"]["annotation"], encode_b64(b"wrapped"));
    assert_eq!(
        req["keyunwrapparams"]["dc"]["Parameters"]["kms"],
        json!([encode_b64(b"k1")])
    );
}

#[test]
fn responses_take_base64_and_byte_arrays() {
    let r = Response::parse(br#"{"keywrapresults":{"annotation":"aGk="}}"#).unwrap();
    assert_eq!(r.annotation.as_deref(), Some(&b"hi"[..]));
    let r = Response::parse(br#"{"keyunwrapresults":{"optsdata":[104,105]}}"#).unwrap();
    assert_eq!(r.optsdata.as_deref().map(Vec::as_slice), Some(&b"hi"[..]));
    let r = Response::parse(br#"{"keywrapresults":{"annotation":null},"keyunwrapresults":{}}"#)
        .unwrap();
    assert!(r.annotation.is_none() && r.optsdata.is_none());
    for (bad, want) in [
        (&b""[..], "wrote nothing"),
        (b"hello", "not JSON"),
        (
            br#"{"keyunwrapresults":{"optsdata":[300]}}"#,
            "array of bytes",
        ),
        (
            br#"{"keywrapresults":{"annotation":"*"}}"#,
            "neither base64",
        ),
    ] {
        let err = Response::parse(bad).unwrap_err();
        assert!(err.contains(want), "{err}");
    }
}

/// An encrypt config with one provider recipient.
fn ec_for(p: &Provider) -> EncryptConfig {
    EncryptConfig::new(
        vec![Recipient::Provider(key(p.clone(), ENABLED))],
        DecryptConfig::default(),
    )
}

#[test]
fn cmd_provider_round_trip_through_shell() {
    // Wraps by answering with the request's optsdata; unwraps by echoing the annotation back.
    let p = sh(
        "echo",
        r#"req=$(cat); case "$req" in
            *'"op":"keywrap"'*) d=$(printf '%s' "$req" | sed 's/.*"optsdata":"\([^"]*\)".*/\1/');
                 printf '{"keywrapresults":{"annotation":"%s"}}' "$d";;
            *) d=$(printf '%s' "$req" | sed 's/.*"annotation":"\([^"]*\)".*/\1/');
                 printf '{"keyunwrapresults":{"optsdata":"%s"}}' "$d";;
        esac"#,
    );
    let w = KeyProviderKeyWrapper::new(p.clone());
    assert_eq!(w.scheme(), "provider.echo");
    let blob = w.wrap_keys(&ec_for(&p), b"secret opts").unwrap().unwrap();
    assert_eq!(blob, b"secret opts");
    let mut dc = DecryptConfig::default();
    assert!(w.no_possible_keys(&dc));
    dc.add_provider_key(key(p, ENABLED));
    assert!(!w.no_possible_keys(&dc));
    assert_eq!(w.unwrap_key(&dc, &blob).unwrap().as_slice(), b"secret opts");
    assert_eq!(w.recipients(&blob), vec!["[provider.echo]"]);
}

#[test]
fn wrap_skips_other_providers_recipients() {
    let w = KeyProviderKeyWrapper::new(sh("a", "exit 3"));
    let ec = ec_for(&sh("b", "exit 3"));
    assert!(w.wrap_keys(&ec, b"x").unwrap().is_none());
}

#[test]
fn provider_failures_are_clear() {
    for (script, want) in [
        (
            "echo 'vault sealed' >&2; exit 3",
            "exited with status 3: vault sealed",
        ),
        ("cat >/dev/null; echo '{}'", "no keywrapresults.annotation"),
        ("cat >/dev/null; echo 'starting...'", "not JSON"),
        ("kill -9 $$", "killed by a signal"),
    ] {
        let p = sh("kp", script);
        let err = KeyProviderKeyWrapper::new(p.clone())
            .wrap_keys(&ec_for(&p), b"x")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("provider:kp: "), "{err}");
        assert!(err.contains(want), "{script}: {err}");
    }
    let p = Provider::new(
        "gone",
        Transport::Cmd {
            path: "/nonexistent/kp".into(),
            args: vec![],
        },
    );
    let err = KeyProviderKeyWrapper::new(p.clone())
        .wrap_keys(&ec_for(&p), b"x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot run /nonexistent/kp"), "{err}");
}

#[test]
fn a_slow_provider_is_stopped() {
    let p = sh("slow", "sleep 30");
    let start = Instant::now();
    let err = run_cmd(
        &p,
        Path::new("/bin/sh"),
        &["-c".into(), "sleep 30".into()],
        b"{}",
        Duration::from_millis(300),
    )
    .unwrap_err()
    .to_string();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(err.contains("no answer within 0.3 s"), "{err}");
    assert!(err.contains(ENV_TIMEOUT), "{err}");
}

#[test]
fn a_provider_that_ignores_stdin_still_answers() {
    let p = sh(
        "quiet",
        "echo '{\"keywrapresults\":{\"annotation\":[1,2]}}'",
    );
    let big = vec![b'a'; 1 << 20];
    let blob = KeyProviderKeyWrapper::new(p.clone())
        .wrap_keys(&ec_for(&p), &big)
        .unwrap()
        .unwrap();
    assert_eq!(blob, vec![1, 2]);
}
