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
grpc_provider.py serves the same answers over gRPC.
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


class Refused(Exception):
    """The provider refuses the request: the message goes to stderr, `code` is the exit status."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def options(description=None):
    """The options every test provider takes (cmd and grpc)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--name", default="test")
    ap.add_argument("--secret")
    ap.add_argument("--arrays", action="store_true")
    ap.add_argument("--log")
    ap.add_argument("--sleep", type=float, default=0)
    ap.add_argument("--fail")
    return ap


def answer(raw, a):
    """Log, wait, and answer one request JSON (bytes) with the response JSON (bytes)."""
    if a.log:
        with open(a.log, "ab") as f:
            f.write(raw.strip() + b"\n")
    if a.sleep:
        time.sleep(a.sleep)
    if a.fail:
        raise Refused(a.fail, 3)
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
        return json.dumps({"keywrapresults": {"annotation": emit(packet, a.arrays)}}).encode()
    if req["op"] == "keyunwrap":
        p = req["keyunwrapparams"]
        packet = json.loads(as_bytes(p["annotation"]))
        kid = packet["kid"].encode()
        allowed = params(p["dc"], a.name)
        if kid not in allowed and b"Enabled" not in allowed:
            raise Refused("access denied to key %s" % kid.decode(), 4)
        wrapped = base64.b64decode(packet["wrapped"])
        opts = xor(wrapped, keystream(secret, kid, len(wrapped)))
        return json.dumps({"keyunwrapresults": {"optsdata": emit(opts, a.arrays)}}).encode()
    raise Refused("unknown op %r" % req["op"], 2)


def main():
    a = options().parse_args()
    try:
        out = answer(sys.stdin.buffer.read(), a)
    except Refused as e:
        print(e, file=sys.stderr)
        sys.exit(e.code)
    print(out.decode())


if __name__ == "__main__":
    main()
