#!/usr/bin/python3
"""A test keyprovider serving ocicrypt's gRPC protocol (keyprovider.KeyProviderService).

WrapKey and UnWrapKey take and return a message whose field 1 (bytes) is the cmd protocol's JSON;
the messages are (de)serialized by hand, without protoc. The answers are provider.py's. It listens
on --listen (default 127.0.0.1:0, or unix:PATH) and prints the bound port (or 0 for a unix socket)
on stdout once ready. Takes provider.py's options; --fail aborts the call with status
UNAVAILABLE, and a WrapKey call carrying a keyunwrap request (or the reverse) is refused.
Needs Debian's python3-grpcio (hence /usr/bin/python3).
"""
import os
import sys
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import provider  # noqa: E402


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def encode(payload):
    """A message with field 1 = payload (bytes)."""
    return b"\x0a" + varint(len(payload)) + payload


def decode(data):
    """Field 1 of a message (bytes); other fields are skipped."""
    i, found = 0, b""
    while i < len(data):
        key, i = read_varint(data, i)
        wire = key & 7
        if wire == 2:
            n, i = read_varint(data, i)
            if key >> 3 == 1:
                found = data[i:i + n]
            i += n
        elif wire == 0:
            _, i = read_varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
    return bytes(found)


def handler(a, op):
    def call(raw, context):
        try:
            if provider.json.loads(raw)["op"] != op:
                raise provider.Refused("this rpc takes op %s" % op, 2)
            return provider.answer(raw, a)
        except provider.Refused as e:
            status = grpc.StatusCode.UNAVAILABLE if e.code == 3 else grpc.StatusCode.PERMISSION_DENIED
            context.abort(status, str(e))

    return grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=decode, response_serializer=encode
    )


def main():
    ap = provider.options(__doc__)
    ap.add_argument("--listen", default="127.0.0.1:0")
    a = ap.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "keyprovider.KeyProviderService",
        {"WrapKey": handler(a, "keywrap"), "UnWrapKey": handler(a, "keyunwrap")},
    ),))
    port = server.add_insecure_port(a.listen)
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
