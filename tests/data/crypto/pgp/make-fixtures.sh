#!/usr/bin/env bash
# Regenerate the OpenPGP fixtures with the real gpg and skopeo (see README.md).
# Usage: tests/data/crypto/pgp/make-fixtures.sh [path/to/rrun]   (from the repository root)
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)
rrun=${1:-target/debug/rrun}
work=$(mktemp -d)
trap 'gpgconf --homedir "$work/gnupg" --kill all 2>/dev/null || true; rm -rf "$work"' EXIT
export GNUPGHOME=$work/gnupg
mkdir -m 700 "$GNUPGHOME"

# Two RSA keys with encryption subkeys (skopeo 1.9's x/crypto/openpgp encrypts to RSA only);
# the second one is passphrase-protected.
gpg --batch --passphrase '' --quick-gen-key 'rrun fixture <fixture@example.invalid>' rsa2048 sign never
fpr1=$(gpg --with-colons --list-keys fixture@example.invalid | awk -F: '/^fpr/ {print $10; exit}')
gpg --batch --passphrase '' --quick-add-key "$fpr1" rsa2048 encr never
gpg --batch --pinentry-mode loopback --passphrase 'fixture pass' \
    --quick-gen-key 'Second Fixture <second@example.invalid>' rsa2048 sign never
fpr2=$(gpg --with-colons --list-keys second@example.invalid | awk -F: '/^fpr/ {print $10; exit}')
gpg --batch --pinentry-mode loopback --passphrase 'fixture pass' --quick-add-key "$fpr2" rsa2048 encr never

gpg --batch --export > "$out/pubring.gpg"
gpg --batch --export-secret-keys fixture@example.invalid > "$out/fixture.sec.gpg"
gpg --batch --pinentry-mode loopback --passphrase 'fixture pass' --armor \
    --export-secret-keys second@example.invalid > "$out/second.sec.asc"

# A one-file image, encrypted by skopeo for one and for both recipients.
mkdir "$work/rootfs"
echo fixture > "$work/rootfs/hello"
"$rrun" image import "$work/rootfs" "oci:$work/plain:latest" >/dev/null
layer=$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1]+"/index.json")); d=i["manifests"][0]["digest"].split(":")[1]; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+d)); print(m["layers"][0]["digest"])' "$work/plain")
echo "$layer" > "$out/plain-layer-digest.txt"
extract() { # layout annotation-suffix output
    python3 -c 'import json,sys,base64; i=json.load(open(sys.argv[1]+"/index.json")); d=i["manifests"][0]["digest"].split(":")[1]; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+d)); v=m["layers"][0]["annotations"]["org.opencontainers.image.enc.keys."+sys.argv[2]]; open(sys.argv[3],"wb").write(base64.b64decode(v.split(",")[0]))' "$@"
}
skopeo copy --quiet --encryption-key pgp:fixture@example.invalid "oci:$work/plain:latest" "oci:$work/one:latest"
extract "$work/one" pgp "$out/skopeo-one.pgp.bin"
skopeo copy --quiet --encryption-key pgp:fixture@example.invalid --encryption-key pgp:second@example.invalid \
    "oci:$work/plain:latest" "oci:$work/two:latest"
extract "$work/two" pgp "$out/skopeo-two.pgp.bin"
gpg --list-packets "$out/skopeo-two.pgp.bin" > "$out/skopeo-two.list-packets.txt" 2>&1 || true
gpg --with-colons --list-keys | grep -E '^(pub|sub|uid)' | cut -d: -f1,5,10 > "$out/keys.txt"
