#!/usr/bin/env bash
# Regenerate the PKCS#7 fixtures with the real openssl and skopeo (see README.md).
# Usage: tests/data/crypto/pkcs7/make-fixtures.sh [path/to/rrun]   (from the repository root)
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
rrun=${1:-target/debug/rrun}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Two self-signed RSA-2048 recipients.
for n in 1 2; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$out/key$n.pem" -out "$out/cert$n.pem" \
        -subj "/CN=rrun-fixture-$n" -days 36500 2>/dev/null
done

mkdir "$work/rootfs"
echo fixture > "$work/rootfs/hello"
"$rrun" image import "$work/rootfs" "oci:$work/plain:latest" >/dev/null
python3 -c 'import json,sys; i=json.load(open(sys.argv[1]+"/index.json")); d=i["manifests"][0]["digest"].split(":")[1]; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+d)); print(m["layers"][0]["digest"])' "$work/plain" > "$out/plain-layer-digest.txt"
extract() { # layout annotation-suffix output
    python3 -c 'import json,sys,base64; i=json.load(open(sys.argv[1]+"/index.json")); d=i["manifests"][0]["digest"].split(":")[1]; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+d)); v=m["layers"][0]["annotations"]["org.opencontainers.image.enc.keys."+sys.argv[2]]; open(sys.argv[3],"wb").write(base64.b64decode(v.split(",")[0]))' "$@"
}
skopeo copy --quiet --encryption-key "pkcs7:$out/cert1.pem" "oci:$work/plain:latest" "oci:$work/one:latest"
extract "$work/one" pkcs7 "$out/skopeo-one.pkcs7.der"
skopeo copy --quiet --encryption-key "pkcs7:$out/cert1.pem" --encryption-key "pkcs7:$out/cert2.pem" \
    "oci:$work/plain:latest" "oci:$work/two:latest"
extract "$work/two" pkcs7 "$out/skopeo-two.pkcs7.der"
openssl asn1parse -inform DER -in "$out/skopeo-two.pkcs7.der" > "$out/skopeo-two.asn1parse.txt"

# Standard CMS from openssl for the same kind of plaintext: AuthEnvelopedData with RFC 5084
# GCMParameters, EnvelopedData with AES-256-CBC and RSA-OAEP key transport.
printf '%s' '{"symkey":"c3ltbWV0cmljIGtleSBmb3IgdGhlIGZpeHR1cmUgbGF5ZXI=","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","cipheroptions":{"nonce":"AAAAAAAAAAAAAAAAAAAAAA=="}}' > "$out/openssl-plaintext.json"
openssl cms -encrypt -binary -aes-128-gcm -recip "$out/cert1.pem" -outform DER \
    -in "$out/openssl-plaintext.json" -out "$out/openssl-auth-gcm.der"
openssl cms -encrypt -binary -aes-256-cbc -recip "$out/cert1.pem" -keyopt rsa_padding_mode:oaep \
    -outform DER -in "$out/openssl-plaintext.json" -out "$out/openssl-oaep-cbc.der"
