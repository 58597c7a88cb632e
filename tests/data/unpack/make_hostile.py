#!/usr/bin/env python3
"""Generate the hostile layer corpus next to this script (tests/data/unpack/*.tar).

Each archive attacks the unpacker one way; src/image/unpack/hostile_tests.rs has one test per
archive and README.md the decision for each. Output is reproducible: fixed mtimes, numeric
owners 0/0, no user names, entries in a fixed order. Python's tarfile writes names verbatim
(`..`, leading `/`), and the few headers it cannot write (GNU sparse, oversized fields) are
built by hand below.

Paths that point outside assume the test layout: the destination is T/parent/dest, so
`../../sentinel` is T/sentinel; absolute targets use /tmp/rrun-unpack-sentinel.

usage: python3 make_hostile.py          # rewrite the .tar files
       python3 make_hostile.py --check  # exit 1 if a committed file differs
"""
import io
import os
import sys
import tarfile

OUT = os.path.dirname(os.path.abspath(__file__))
MTIME = 1700000000
ABS_SENTINEL = "/tmp/rrun-unpack-sentinel"
REL_SENTINEL = "../../sentinel"


def entry(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link="", pax=None, dev=(0, 0)):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.linkname = link
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    ti.devmajor, ti.devminor = dev
    if pax:
        ti.pax_headers = dict(pax)
    return ti, data


def d(name, mode=0o755):
    return entry(name, tarfile.DIRTYPE, mode=mode)


def f(name, data=b"x\n", mode=0o644, pax=None):
    return entry(name, data=data, mode=mode, pax=pax)


def sym(name, target):
    return entry(name, tarfile.SYMTYPE, mode=0o777, link=target)


def hard(name, target):
    return entry(name, tarfile.LNKTYPE, link=target)


def tar_bytes(entries, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def octal(value, width):
    text = b"%0*o\0" % (width - 1, value)
    assert len(text) == width, "use num() for values this large"
    return text


def base256(value, width):
    return bytes([0x80]) + value.to_bytes(width - 1, "big")


def num(value, width):
    """Octal when it fits, GNU base-256 otherwise."""
    return octal(value, width) if value < 8 ** (width - 1) else base256(value, width)


def raw_header(name, typeflag, size_field, extra=None):
    """A GNU header built by hand (for what tarfile refuses to write)."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = octal(0o644, 8)
    h[108:116] = octal(0, 8)
    h[116:124] = octal(0, 8)
    h[124:136] = size_field
    h[136:148] = octal(MTIME, 12)
    h[156] = ord(typeflag)
    h[257:265] = b"ustar  \0"
    for offset, value in (extra or {}).items():
        h[offset:offset + len(value)] = value
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


END = b"\0" * 1024


def corpus():
    c = {}
    # 1. `..` traversal, plain and nested.
    c["dotdot_traversal"] = tar_bytes([f("ok"), f(REL_SENTINEL + "/pwned")])
    c["dotdot_nested"] = tar_bytes([d("a/"), f("a/b/../../../../sentinel/pwned")])
    # 2. Absolute names.
    c["absolute_paths"] = tar_bytes([f(ABS_SENTINEL + "/pwned"), f("/etc/rrun-pwned")])
    # 3. A symlink out, then a write through it (absolute and relative).
    c["symlink_write_through"] = tar_bytes([
        sym("evil", ABS_SENTINEL), f("evil/pwned"),
        sym("rel", REL_SENTINEL), f("rel/pwned"),
    ])
    # 4. Symlinks made of `..` chains, then writes through them.
    c["symlink_dotdot_chain"] = tar_bytes([
        sym("up", "../../../../../../../.."), f("up/etc/pwned"),
        d("a/"), d("a/b/"), sym("a/b/c", "../../.."), f("a/b/c/sentinel/pwned"),
    ])
    # 5. Symlink loops, then a write through one.
    c["symlink_loop"] = tar_bytes([
        sym("loop1", "loop2"), sym("loop2", "loop1"), sym("self", "self"), f("loop1/pwned"),
    ])
    # 6. Hardlinks to a host file, through `..`, and through a symlink.
    c["hardlink_host_file"] = tar_bytes([hard("passwd", "/etc/passwd")])
    c["hardlink_dotdot"] = tar_bytes([hard("keep", REL_SENTINEL + "/keep")])
    c["hardlink_through_symlink"] = tar_bytes([sym("lnk", "/etc"), hard("h", "lnk/passwd")])
    c["hardlink_through_relative_symlink"] = tar_bytes([
        sym("lnk", REL_SENTINEL), hard("h", "lnk/keep"),
    ])
    # 7. A hardlink to a symlink that points out: links the symlink itself, never its target.
    c["hardlink_to_symlink"] = tar_bytes([sym("s", "/etc/passwd"), hard("h", "s")])
    # 8. Whiteouts of `..`, of the directory itself (`/`), and through a symlink.
    c["whiteout_dotdot"] = tar_bytes([d("sub/"), f("sub/.wh..."), f(".wh...")])
    c["whiteout_root"] = tar_bytes([f("/.wh.")])
    c["whiteout_through_symlink"] = tar_bytes([
        sym("rel", REL_SENTINEL), f("rel/.wh.keep"),
        sym("abs", ABS_SENTINEL), f("abs/.wh..wh..opq"),
    ])
    # 9. An opaque marker at the root (plus a file of the same layer that must stay).
    c["opaque_root"] = tar_bytes([f("kept"), f(".wh..wh..opq"), d("etc/"), f("etc/new")])
    # 10. A file replacing a directory and the reverse (and a directory over a symlink out).
    c["file_replaces_dir"] = tar_bytes([
        d("d/"), f("d/f"), d("d/sub/"), f("d/sub/g"), f("d", b"now a file\n"),
    ])
    c["dir_replaces_file"] = tar_bytes([
        f("x", b"a file\n"), d("x/"), f("x/y"),
        sym("evil", ABS_SENTINEL), d("evil/"), f("evil/pwned"),
    ])
    # 11. Duplicate entries: the last one wins.
    c["duplicate_entries"] = tar_bytes([
        f("f", b"first\n", 0o600), f("f", b"second\n", 0o640),
        sym("s", "/etc/passwd"), f("s", b"file over symlink\n"),
    ])
    # 12. 300-character names, PAX and GNU long name/link.
    long_dir = "d" * 150
    long_path = long_dir + "/" + "f" * 149
    for fmt, label in ((tarfile.PAX_FORMAT, "pax"), (tarfile.GNU_FORMAT, "gnu")):
        c["long_names_" + label] = tar_bytes([
            d(long_dir + "/"), f(long_path, b"long\n"),
            sym(long_dir + "/link", "/" + long_path), hard(long_dir + "/hard", long_path),
        ], fmt)
    c["long_component"] = tar_bytes([f("c" * 300)], tarfile.PAX_FORMAT)
    # 13. setuid, setgid, sticky.
    c["setuid_setgid"] = tar_bytes([
        f("suid", b"#!/bin/sh\n", 0o4755), f("sgid", b"#!/bin/sh\n", 0o2755),
        d("sgid-dir/", 0o2775), d("sticky/", 0o1777),
    ])
    # 14. A GNU sparse file claiming 1 TiB, and a file whose size field says 2^60.
    tib = 1 << 40
    sparse_extra = {
        386: num(tib - 512, 12), 398: num(512, 12),  # one data segment at the end
        483: num(tib, 12),                            # real size
    }
    c["huge_sparse"] = raw_header(b"sparse", "S", octal(512, 12), sparse_extra) + b"s" * 512 + END
    c["huge_size"] = raw_header(b"huge", "0", base256(1 << 60, 12)) + b"h" * 512 + END
    # 15. A PAX header that claims 1 GiB (read into memory by naive readers).
    c["pax_header_bomb"] = raw_header(b"././@PaxHeader", "x", octal(1 << 30, 12)) + b"9" * 4096
    # 16. Truncated: inside a file's data, and at a header boundary with no end blocks.
    full = tar_bytes([f("big", b"t" * 65536), f("after")])
    c["truncated_data"] = full[:512 + 30000]
    c["truncated_no_end"] = full[:512 + 65536 + 512 + 512]
    # 17. Device nodes and a fifo.
    c["device_nodes"] = tar_bytes([
        entry("null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
        entry("loop0", tarfile.BLKTYPE, mode=0o660, dev=(7, 0)),
        entry("fifo", tarfile.FIFOTYPE, mode=0o644),
    ])
    # 18. xattrs: only user.* (and trusted.overlay.opaque as root) may be kept.
    c["xattrs"] = tar_bytes([
        d("dir/"),
        f("file", b"x\n", pax={
            "SCHILY.xattr.user.rrun": "kept",
            "SCHILY.xattr.security.selinux": "system_u:object_r:shadow_t:s0",
            "SCHILY.xattr.trusted.overlay.redirect": "/etc",
            "SCHILY.xattr.trusted.other": "dropped",
        }),
        entry("opq/", tarfile.DIRTYPE, mode=0o755, pax={"SCHILY.xattr.trusted.overlay.opaque": "y"}),
    ], tarfile.PAX_FORMAT)
    # 19. A directory named like a whiteout, and the root entry as a file.
    c["wh_component"] = tar_bytes([d(".wh.x/"), f(".wh.x/file")])
    c["root_not_dir"] = tar_bytes([f("./")])
    return c


def main():
    check = "--check" in sys.argv[1:]
    bad = 0
    for name, data in sorted(corpus().items()):
        path = os.path.join(OUT, name + ".tar")
        if check:
            with open(path, "rb") as fh:
                if fh.read() != data:
                    print("differs:", path)
                    bad += 1
        else:
            with open(path, "wb") as fh:
                fh.write(data)
    if not check:
        print("wrote %d archives to %s" % (len(corpus()), OUT))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
