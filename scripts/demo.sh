#!/usr/bin/env bash
# `make demo`: import a busybox-static root filesystem as an image, encrypt it for a fresh key
# pair, show its layers, show that a wrong key is refused, decrypt with the right key, and check
# that the layer is the original one (and that skopeo opens rrun's image too).
# Work dir: $DEMO_DIR, default .work/demo in the repo (rebuilt on every run).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need jq openssl skopeo curl docker-registry notary-server notary-signer

W=${DEMO_DIR:-$ROOT/.work/demo}
rm -rf "$W"
mkdir -p "$W"
W=$(cd "$W" && pwd)
IMG="$W/image"               # the plain image (tag plain) and the decrypted one (tag dec)
ENC_IMG="$W/encrypted"       # the encrypted image alone, ready to share
STEP=0
STORE="$W/store"             # rrun's image store for the pulls (--root)
STATE=/run/rrun-demo         # container state (--state), in memory
trap 'echo; echo "demo FAILED (step $STEP, line $LINENO)" >&2' ERR
trap 'stop_registry; stop_notary' EXIT

step() { STEP=$((STEP + 1)); printf '\n==> %d. %s\n' "$STEP" "$*"; }
# show CMD...: print the command (paths relative to the work dir) and run it
show() {
  local line="$*"
  line=${line//$RRUN/rrun}
  echo "\$ ${line//"$W"\//}"
  "$@"
}
rrun() { show "$RRUN" "$@"; }

echo "rrun demo: image encryption compatible with skopeo/ocicrypt"
echo "work dir: $W"

step "Build a busybox-static root filesystem"
make_busybox_rootfs "$W/rootfs"
echo "rootfs/: $(find "$W/rootfs" -type l | wc -l) applet symlinks to /bin/busybox ($(stat -c %s /bin/busybox) bytes)"

step "Import it as a one-layer image"
rrun image import --cmd /bin/sh "$W/rootfs" "oci:$IMG:plain"
PLAIN=$(layer_digests "$IMG" plain)
echo "plain layer: $PLAIN"

step "Make a key pair for alice, and a second key (mallory) that must not open the image"
for who in alice mallory; do
  (umask 077; openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/$who.pem" 2>/dev/null)
  openssl pkey -in "$W/$who.pem" -pubout -out "$W/$who.pub"
done
for f in alice.pem alice.pub mallory.pem mallory.pub; do stat -c '%A %n' "$W/$f" | sed "s|$W/||"; done

step "Encrypt the image for alice, into a layout of its own (no plaintext blobs next to it)"
rrun image encrypt --recipient "jwe:$W/alice.pub" "oci:$IMG:plain" "oci:$ENC_IMG:enc"

step "Show its layers"
rrun image layerinfo "oci:$ENC_IMG:enc"
ENC=$(layer_digests "$ENC_IMG" enc)
[ "$ENC" != "$PLAIN" ] || die "the encrypted layer has the plain digest"

step "Decrypt with mallory's key: rrun must refuse"
rc=0
show "$RRUN" image decrypt --key "$W/mallory.pem" "oci:$ENC_IMG:enc" "oci:$IMG:wrong" 2>"$W/wrong.err" || rc=$?
sed 's/^/  | /' "$W/wrong.err"
[ "$rc" = 125 ] || die "decrypt with the wrong key exited $rc; expected the refusal (125)"
if jq -e '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]=="wrong")' \
  "$IMG/index.json" >/dev/null; then
  die "a refused decrypt wrote the tag 'wrong'"
fi
echo "refused as expected (exit $rc), nothing written"

step "Decrypt with alice's key"
rrun image decrypt --key "$W/alice.pem" "oci:$ENC_IMG:enc" "oci:$IMG:dec"
DEC=$(layer_digests "$IMG" dec)
echo "plain layer:     $PLAIN"
echo "decrypted layer: $DEC"
[ "$DEC" = "$PLAIN" ] || die "the decrypted layer differs from the original"
echo "identical: the decrypted layer is the imported one"

step "skopeo (containers/ocicrypt) opens rrun's image with alice's key too"
show skopeo copy -q --decryption-key "$W/alice.pem" "oci:$ENC_IMG:enc" "oci:$W/by-skopeo:dec"
[ "$(layer_digests "$W/by-skopeo" dec)" = "$PLAIN" ] || die "skopeo's decrypted layer differs"
echo "identical"

step "Start a local registry (Debian's docker-registry) on a free loopback port"
start_registry "$W/registry"
echo "registry: http://$REGISTRY (log: registry/registry.log)"
APP="$REGISTRY/demo/app:1"

step "Push the encrypted image"
rrun push --root "$STORE" "oci:$ENC_IMG:enc" "$APP"
# layer_fetches: how many times the registry served the encrypted layer blob
layer_fetches() { grep -c "GET /v2/demo/app/blobs/$ENC" "$W/registry/registry.log" || true; }

step "Pull it with mallory's key: refused before a single layer byte is downloaded"
rc=0
show "$RRUN" pull --root "$STORE" --key "$W/mallory.pem" "$APP" 2>"$W/pull-wrong.err" || rc=$?
sed 's/^/  | /' "$W/pull-wrong.err"
[ "$rc" = 125 ] || die "pull with the wrong key exited $rc; expected the refusal (125)"
[ "$(layer_fetches)" = 0 ] || die "the registry served the layer to a refused pull"
"$RRUN" images --root "$STORE" | grep -q demo/app && die "a refused pull stored the image"
echo "refused (exit $rc); the registry log shows 0 requests for the layer blob; the store is empty"

step "Pull it with alice's key"
rrun pull --root "$STORE" --key "$W/alice.pem" "$APP"
rrun images --root "$STORE"
echo "the registry served the layer $(layer_fetches) time(s); the store keeps it encrypted"

step "Start a local Notary (notary-server + notary-signer, TLS) and sign the tag with rrun"
start_notary "$W/notary"
echo "trust server: $NOTARY_URL (CA: ${NOTARY_CA#"$W"/})"
TRUST=(--trust-server "$NOTARY_URL" --tls-ca "$NOTARY_CA")
export RRUN_TRUST_ROOT_PASSPHRASE=demo-root-passphrase
export RRUN_TRUST_REPOSITORY_PASSPHRASE=demo-repository-passphrase
rrun trust sign --root "$STORE" "${TRUST[@]}" "$APP"
SIGNED=$("$RRUN" images --root "$STORE" --format json | jq -r --arg n "$APP" '.[] | select(.names | index($n)) | .manifest_digest')
rrun trust inspect --root "$STORE" "${TRUST[@]}" "$REGISTRY/demo/app"

step "Pull with --verify: the tag resolves only through the signed metadata"
rrun pull --verify --root "$STORE" "${TRUST[@]}" --key "$W/alice.pem" "$APP"

step "Someone pushes a different, unsigned image over the same tag"
rrun push --root "$STORE" "oci:$IMG:plain" "$APP"
MOVED=$(curl -s -o /dev/null -D - -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$REGISTRY/v2/demo/app/manifests/1" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest" {print $2}')
echo "the registry now serves $APP as $MOVED"
[ "$MOVED" != "$SIGNED" ] || die "the tag did not move"

step "Pull with --verify again: rrun still gets the signed image, by its signed digest"
rrun pull --verify --root "$STORE" "${TRUST[@]}" --key "$W/alice.pem" "$APP"
GOT=$("$RRUN" images --root "$STORE" --format json | jq -r --arg n "$APP" '.[] | select(.names | index($n)) | .manifest_digest')
echo "signed: $SIGNED"
echo "stored: $GOT"
[ "$GOT" = "$SIGNED" ] || die "the verified pull stored $GOT, not the signed $SIGNED"
echo "the unsigned push changed nothing for a verified pull"

step "Run the encrypted image without a key: refused before anything is decrypted or mounted"
RUN=(--root "$STORE" --state "$STATE")
rc=0
show "$RRUN" run --rm "${RUN[@]}" "$APP" /bin/echo hello 2>"$W/run-nokey.err" || rc=$?
sed 's/^/  | /' "$W/run-nokey.err"
[ "$rc" = 125 ] || die "run without the key exited $rc; expected the refusal (125)"
echo "refused (exit $rc)"

step "Run it with alice's key: layers decrypted into a private tmpfs (sealed), confined by default"
rrun run --rm "${RUN[@]}" --key "$W/alice.pem" "$APP" /bin/sh -c \
  'echo "hello from inside: pid $$, hostname $(hostname)"; grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status; mount | grep " / "'
if grep -q rrun-sealed /proc/self/mountinfo; then die "a sealed tmpfs is still mounted after --rm"; fi
echo "after exit: no sealed mount left, no plaintext on disk"

step "A sealed service: the systemd unit for it, its key from an encrypted systemd credential"
rrun generate systemd --root "$STORE" --name demo-app --key cred:demokey "$APP" \
  /bin/sh -c 'echo "service up"; exec sleep infinity'
echo "(seal the key first: systemd-creds encrypt --name=demokey alice.pem /etc/credstore.encrypted/demokey)"
echo "systemd hands the unit the decrypted key in \$CREDENTIALS_DIRECTORY; outside a unit, --key cred: says so:"
rc=0
show "$RRUN" run --rm "${RUN[@]}" --key cred:demokey "$APP" true 2>"$W/cred.err" || rc=$?
sed 's/^/  | /' "$W/cred.err"
[ "$rc" = 125 ] || die "--key cred: outside a unit exited $rc; expected 125"
mkdir -p -m 0700 "$W/creds"
cp "$W/alice.pem" "$W/creds/demokey"
echo "and with a credentials directory as systemd makes it:"
show env CREDENTIALS_DIRECTORY="$W/creds" "$RRUN" run --rm "${RUN[@]}" --key cred:demokey "$APP" /bin/echo "hello from the sealed service"

trap - ERR
printf '\ndemo OK: import, encrypt, layerinfo, wrong key refused, decrypt (rrun and skopeo),\n'
printf '         push, pull refused with the wrong key before any layer fetch, pull with the key,\n'
printf '         trust sign, pull --verify, an unsigned push over the signed tag changes nothing,\n'
printf '         run refused without the key, sealed run with it, its systemd unit and cred: key\n'
