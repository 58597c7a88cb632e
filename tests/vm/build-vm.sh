#!/bin/bash
# tests/vm/build-vm.sh DIR: builds (once) the Debian 12 test VM that tests/vm/boot-vm.sh boots.
#
# Produces in DIR:
#   vmlinux / vmlinuz   Debian's stock kernel (AppArmor built in); vmlinux boots via PVH (faster under TCG)
#   initrd.img          a static-busybox initramfs: loads virtio, ext4 and 9p modules, mounts /dev/vda
#   rootfs.img          ext4 image of a minbase Debian with systemd, apparmor, util-linux, libssl3, libseccomp2
#   kver                the kernel release
#   stamp               the version of this recipe that built DIR (a changed recipe rebuilds)
# Downloads (kernel .deb) and the debootstrap tree stay in DIR and are reused.
# Env: SUITE (bookworm), MIRROR (first Debian URI apt uses), IMG_FREE_MB (768).
set -euo pipefail

RECIPE=3   # bump when the steps below change what ends up in the image
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "build-vm.sh needs root (debootstrap and chroot); run it with sudo" >&2; exit 2; }
D=$(realpath -m "$1"); mkdir -p "$D"
if [ "$(cat "$D/stamp" 2>/dev/null)" = "$RECIPE" ] && [ -f "$D/rootfs.img" ] && [ -f "$D/initrd.img" ]; then
  echo "[build-vm] $D is up to date (recipe $RECIPE)" >&2; exit 0
fi
SUITE=${SUITE:-bookworm}
PACKAGES=systemd-sysv,apparmor,kmod,procps,iproute2,dbus,util-linux,libssl3,libseccomp2
say() { printf '[build-vm %s] %s\n' "$(date +%T)" "$*" >&2; }
start=$SECONDS

# -- host tools (apt when missing)
missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-system-x86_64 || missing+=(qemu-system-x86)
have debootstrap || missing+=(debootstrap)
have cpio || missing+=(cpio)
have mkfs.ext4 || missing+=(e2fsprogs)
have xz || missing+=(xz-utils)
LC_ALL=C ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ -z "${MIRROR:-}" ]; then
  MIRROR=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -oE '(https?|file):[^ ]*/debian/?( |$)' | head -n1 | tr -d ' ' || true)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi
say "suite $SUITE from $MIRROR into $D"

# -- kernel: the .deb of the current linux-image-amd64
if [ ! -s "$D/kver" ] || [ ! -d "$D/kernel/lib/modules" ]; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}' || true)
  if [ -z "$pkg" ]; then apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null; \
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); fi
  say "kernel package $pkg"
  rm -rf "$D/kernel" "$D/deb"; mkdir -p "$D/kernel" "$D/deb"
  (cd "$D/deb" && apt-get download -q "$pkg" >/dev/null)
  dpkg-deb -x "$D"/deb/*.deb "$D/kernel"
  ls "$D/kernel/lib/modules" | head -n1 > "$D/kver"
  rm -f "$D/vmlinux"
fi
kver=$(cat "$D/kver")
cp "$D/kernel/boot/vmlinuz-$kver" "$D/vmlinuz"
grep -q '^CONFIG_SECURITY_APPARMOR=y' "$D/kernel/boot/config-$kver" || say "warning: kernel $kver has no AppArmor"
if [ ! -f "$D/vmlinux" ]; then
  # the xz payload inside bzImage is the ELF kernel; PVH boots it without decompressing in the guest
  at=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$D/vmlinuz" | head -n1 | cut -d: -f1 || true)
  if [ -n "$at" ]; then
    tail -c +$((at + 1)) "$D/vmlinuz" | xz -dc --single-stream > "$D/vmlinux.part" 2>/dev/null || true
    if [ "$(head -c 4 "$D/vmlinux.part" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then mv "$D/vmlinux.part" "$D/vmlinux"; fi
  fi
  rm -f "$D/vmlinux.part"
fi

# -- root filesystem
R=$D/root
if [ ! -f "$R/.bootstrapped" ]; then
  say "debootstrap --variant=minbase (a few minutes)"
  rm -rf "$R"
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$R" "$MIRROR" > "$D/debootstrap.log" 2>&1; then
    tail -n 25 "$D/debootstrap.log" >&2; exit 1
  fi
  touch "$R/.bootstrapped"
fi
say "kernel modules"
src=$D/kernel/lib/modules/$kver dst=$R/lib/modules/$kver
rm -rf "$dst"; mkdir -p "$dst/kernel/drivers"
cp -a "$src"/modules.order "$src"/modules.builtin "$src"/modules.builtin.modinfo "$dst/"
for sub in arch block crypto lib mm net fs virt drivers/virtio drivers/block drivers/char drivers/net drivers/md; do
  [ -d "$src/kernel/$sub" ] && mkdir -p "$dst/kernel/$(dirname "$sub")" && cp -a "$src/kernel/$sub" "$dst/kernel/$(dirname "$sub")/"
done
chroot "$R" depmod "$kver"

say "guest configuration"
echo vm > "$R/etc/hostname"
printf '127.0.0.1 localhost vm\n::1 localhost\n' > "$R/etc/hosts"
: > "$R/etc/fstab"
chroot "$R" passwd -d root >/dev/null
rm -f "$R"/var/cache/apt/archives/*.deb
install -m 755 "$(dirname "$0")/guest-run" "$R/usr/local/sbin/guest-run"
cat > "$R/etc/systemd/system/guest-run.service" <<'UNIT'
[Unit]
Description=run the host's command (tests/vm/boot-vm.sh)
After=basic.target apparmor.service dbus.service
Wants=apparmor.service dbus.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/guest-run
ExecStopPost=/bin/systemctl poweroff -ff
StandardOutput=journal+console
StandardError=journal+console
UNIT
cat > "$R/etc/systemd/system/guest-run.target" <<'UNIT'
[Unit]
Description=boot just far enough to run the host's command
Requires=basic.target guest-run.service
After=basic.target
AllowIsolate=yes
UNIT
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$R/etc/systemd/journald.conf.d/volatile.conf"
# units that only cost boot time in a throwaway VM
for u in getty.target serial-getty@ttyS0.service console-getty.service systemd-timesyncd.service \
         apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
         systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service \
         systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-journal-flush.service \
         systemd-update-utmp.service systemd-update-utmp-runlevel.service; do
  ln -sf /dev/null "$R/etc/systemd/system/$u"
done

say "initramfs"
I=$D/initramfs
rm -rf "$I"; mkdir -p "$I"/bin "$I"/dev "$I"/proc "$I"/sys "$I"/newroot
cp /bin/busybox "$I/bin/busybox"
chroot "$R" modprobe -S "$kver" --show-depends -a virtio_pci virtio_blk crc32c_generic ext4 9p 9pnet_virtio virtio_console \
  | awk '$1 == "insmod" && !seen[$2]++ {print $2}' > "$I/modules"
while read -r ko; do mkdir -p "$I$(dirname "$ko")"; cp "$R$ko" "$I$ko"; done < "$I/modules"
cat > "$I/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
while read -r ko; do insmod "$ko" 2>/dev/null; done < /modules
n=0; while [ ! -b /dev/vda ] && [ $n -lt 500 ]; do usleep 10000; n=$((n + 1)); done
mount -t ext4 /dev/vda /newroot || { echo "initramfs: /dev/vda does not mount"; poweroff -f; }
umount /sys; umount /proc
mount --move /dev /newroot/dev
exec switch_root /newroot /lib/systemd/systemd
INIT
chmod 755 "$I/init"
(cd "$I" && find . | cpio -o -H newc --quiet) | gzip -1 > "$D/initrd.img"

say "ext4 image"
mb=$(du -sm "$R" | cut -f1)
rm -f "$D/rootfs.img"
mkfs.ext4 -q -F -L vmroot -E root_owner=0:0 -d "$R" "$D/rootfs.img" "$((mb + mb / 4 + ${IMG_FREE_MB:-768}))M"
echo "$RECIPE" > "$D/stamp"
say "done in $((SECONDS - start)) s ($(du -sh "$D" | cut -f1) in $D)"
