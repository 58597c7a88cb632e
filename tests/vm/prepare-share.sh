#!/bin/bash
# tests/vm/prepare-share.sh RRUN DIR: fill DIR with what tests/vm/suite.sh needs: the rrun
# binary, the suite, a static-busybox rootfs/ and keys/ (an RSA pair for the sealed image).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 RRUN DIR" >&2; exit 2; }
bin=$1 share=$2
case $(LC_ALL=C ldd /bin/busybox 2>&1 || true) in
  *'not a dynamic'*) ;;
  *) echo "prepare-share: /bin/busybox is not static: apt-get install busybox-static" >&2; exit 2 ;;
esac
cp "$bin" "$share/rrun"
cp "$(dirname "$0")/suite.sh" "$share/suite.sh"
mkdir -p "$share/rootfs"/{bin,etc,proc,sys,dev,tmp,root} "$share/keys"
cp /bin/busybox "$share/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf /bin/busybox "$share/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$share/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$share/rootfs/etc/group"
openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$share/keys/priv.pem"
openssl pkey -in "$share/keys/priv.pem" -pubout -out "$share/keys/pub.pem"
