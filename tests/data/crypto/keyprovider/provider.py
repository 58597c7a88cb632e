#!/usr/bin/env python3
"""A test keyprovider speaking ocicrypt's cmd protocol: request JSON on stdin, answer on stdout.

It wraps the private options with a keystream derived from a secret file and the key id it is
given (`provider:NAME:KEYID`, or `Enabled`), and unwraps only when the caller names the same key
id (or passes no opaque part). Options:
  --name NAME       the provider name whose parameters it reads (default: test)
  --secret FILE     the secret (default: the built-in one)
  --arrays          write byte fields as JSON integer arrays (what Rust providers write)
  --log FILE        append every request to FILE, one JSON line each
  --sleep SECONDS   wait before answering
  --fail TEXT       print TEXT on stderr and exit 3
"""
import argparse
import base64
import hashlib
import json
import sys
import time


def keystream(secret, kid, n):
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(secret + b"\0" + kid + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:n]


def xor(data, stream):
    return bytes(a ^ b for a, b in zip(data, stream))


def as_bytes(v):
    if isinstance(v, list):
        return bytes(v)
    return base64.b64decode(v)


def emit(data, arrays):
    return list(data) if arrays else base64.b64encode(data).decode()


def params(cfg, name):
    return [as_bytes(p) for p in ((cfg or {}).get("Parameters") or {}).get(name) or []]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="test")
    ap.add_argument("--secret")
    ap.add_argument("--arrays", action="store_true")
    ap.add_argument("--log")
    ap.add_argument("--sleep", type=float, default=0)
    ap.add_argument("--fail")
    a = ap.parse_args()
    raw = sys.stdin.buffer.read()
    if a.log:
        with open(a.log, "ab") as f:
            f.write(raw.strip() + b"\n")
    if a.sleep:
        time.sleep(a.sleep)
    if a.fail:
        print(a.fail, file=sys.stderr)
        sys.exit(3)
    secret = b"rrun test keyprovider secret"
    if a.secret:
        with open(a.secret, "rb") as f:
            secret = f.read()
    req = json.loads(raw)
    if req["op"] == "keywrap":
        p = req["keywrapparams"]
        kids = params(p["ec"], a.name)
        kid = kids[0] if kids else b"Enabled"
        opts = as_bytes(p["optsdata"])
        packet = json.dumps({
            "kid": kid.decode(),
            "wrapped": base64.b64encode(xor(opts, keystream(secret, kid, len(opts)))).decode(),
        }).encode()
        print(json.dumps({"keywrapresults": {"annotation": emit(packet, a.arrays)}}))
    elif req["op"] == "keyunwrap":
        p = req["keyunwrapparams"]
        packet = json.loads(as_bytes(p["annotation"]))
        kid = packet["kid"].encode()
        allowed = params(p["dc"], a.name)
        if kid not in allowed and b"Enabled" not in allowed:
            print("access denied to key %s" % kid.decode(), file=sys.stderr)
            sys.exit(4)
        wrapped = base64.b64decode(packet["wrapped"])
        opts = xor(wrapped, keystream(secret, kid, len(wrapped)))
        print(json.dumps({"keyunwrapresults": {"optsdata": emit(opts, a.arrays)}}))
    else:
        print("unknown op %r" % req["op"], file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
