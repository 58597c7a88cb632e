#!/usr/bin/env python3
"""Generate TUF 1.0 repositories with python-tuf for rrun's plain-TUF integration tests.

Usage: make_repos.py OUT_DIR [SCENARIO...]   (default: every scenario)

Writes OUT_DIR/<scenario>/<stage>/{metadata,targets}/, each stage the complete tree a
repository server would serve at that moment (every version of every role, as python-tuf's
client expects with consistent snapshots, plus the unversioned names). Keys live only in
memory; stages that need a signature the legitimate repository would never make (the attacks)
are made here too, from a fork of the repository state.
"""
import copy
import hashlib
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

NOW = datetime.now(timezone.utc).replace(microsecond=0)
DAY = timedelta(days=1)
GEN = {
    "ed25519": CryptoSigner.generate_ed25519,
    "ecdsa": CryptoSigner.generate_ecdsa,
    "rsa": CryptoSigner.generate_rsa,
}
TOP = ("root", "timestamp", "snapshot", "targets")


class Repo:
    def __init__(self, consistent=True, keytypes=("ed25519",) * 4, hashes=False, expires=None):
        self.consistent = consistent
        self.hashes = hashes
        self.exp = {"root": 365, "timestamp": 7, "snapshot": 30, "targets": 30}
        self.exp.update(expires or {})
        self.signers = {}  # role -> [signer]
        self.files = {}  # role -> {version: bytes}
        self.blobs = []  # (target path, bytes)
        self.root = Root(expires=NOW + self.exp["root"] * DAY, consistent_snapshot=consistent)
        for role, kt in zip(TOP, keytypes):
            s = GEN[kt]()
            self.signers[role] = [s]
            self.root.add_key(s.public_key, role)
        self.roles = {"targets": Targets(expires=NOW + self.exp["targets"] * DAY)}
        self.snapshot = Snapshot(expires=NOW + self.exp["snapshot"] * DAY)
        self.timestamp = Timestamp(expires=NOW + self.exp["timestamp"] * DAY)
        self.dirty = {"targets"}
        self.sign("root", self.root)
        self.publish()

    def fork(self):
        """A copy of the repository state that shares the (uncopyable) signers."""
        other = object.__new__(Repo)
        for k, v in self.__dict__.items():
            setattr(other, k, dict(v) if k == "signers" else copy.deepcopy(v))
        return other

    def sign(self, role, signed, signers=None):
        md = Metadata(signed)
        for s in self.signers[role] if signers is None else signers:
            md.sign(s, append=True)
        data = md.to_bytes(JSONSerializer(compact=True))
        self.files.setdefault(role, {})[signed.version] = data
        return data

    def meta(self, data, version):
        if self.hashes:
            return MetaFile(version=version, length=len(data), hashes={"sha256": hashlib.sha256(data).hexdigest()})
        return MetaFile(version=version)

    def publish(self, timestamp_only=False):
        """Sign changed targets roles, then a new snapshot and timestamp."""
        if not timestamp_only:
            for role in sorted(self.dirty):
                t = self.roles[role]
                if role in self.files:
                    t.version += 1
                data = self.sign(role, t)
                self.snapshot.meta[f"{role}.json"] = self.meta(data, t.version)
            self.dirty = set()
            if "snapshot" in self.files:
                self.snapshot.version += 1
            sdata = self.sign("snapshot", self.snapshot)
            self.timestamp.snapshot_meta = self.meta(sdata, self.snapshot.version)
        if "timestamp" in self.files:
            self.timestamp.version += 1
        self.sign("timestamp", self.timestamp)

    def add_target(self, path, data, role="targets"):
        self.roles[role].targets[path] = TargetFile.from_data(path, data, ["sha256"])
        self.blobs.append((path, data))
        self.dirty.add(role)

    def delegate(self, parent, name, paths=None, prefixes=None, terminating=False, keytype="ed25519"):
        s = GEN[keytype]()
        self.signers[name] = [s]
        p = self.roles[parent]
        if p.delegations is None:
            p.delegations = Delegations(keys={}, roles={})
        p.delegations.roles[name] = DelegatedRole(
            name=name, keyids=[], threshold=1, terminating=terminating, paths=paths, path_hash_prefixes=prefixes
        )
        p.add_key(s.public_key, name)
        self.roles[name] = Targets(expires=NOW + self.exp["targets"] * DAY)
        self.dirty |= {parent, name}

    def rotate_root(self, role, keytype="ed25519", extra_signers=()):
        """New key for `role`; root version+1 signed by the old and new root keys."""
        old_root = list(self.signers["root"])
        s = GEN[keytype]()
        for k in list(self.root.roles[role].keyids):
            self.root.revoke_key(k, role)
        self.root.add_key(s.public_key, role)
        self.signers[role] = [s]
        self.root.version += 1
        signers = old_root + ([s] if role == "root" else self.signers["root"]) + list(extra_signers)
        unique = {id(x): x for x in signers}.values()
        self.sign("root", self.root, list(unique))

    def write(self, out):
        md, tg = Path(out, "metadata"), Path(out, "targets")
        md.mkdir(parents=True, exist_ok=True)
        tg.mkdir(parents=True, exist_ok=True)
        for role, versions in self.files.items():
            q = quote(role, "")
            for v, data in versions.items():
                (md / f"{v}.{q}.json").write_bytes(data)
            (md / f"{q}.json").write_bytes(versions[max(versions)])
        for path, data in self.blobs:
            d, _, base = path.rpartition("/")
            target_dir = tg / d if d else tg
            target_dir.mkdir(parents=True, exist_ok=True)
            (target_dir / base).write_bytes(data)
            (target_dir / f"{hashlib.sha256(data).hexdigest()}.{base}").write_bytes(data)


def delegations(out):
    r = Repo(keytypes=("ed25519", "ecdsa", "rsa", "ed25519"))
    r.add_target("file1.txt", b"top-level file\n")
    r.delegate("targets", "a", paths=["a/*", "a/deep/*"], keytype="ecdsa")
    r.add_target("a/x.txt", b"from a\n", role="a")
    r.add_target("b/evil.txt", b"a claims a path outside its delegation\n", role="a")
    r.delegate("a", "a1", paths=["a/deep/*"])
    r.add_target("a/deep/z.txt", b"from a1\n", role="a1")
    r.delegate("targets", "b", paths=["b/*"], terminating=True)
    r.add_target("b/y.txt", b"from b\n", role="b")
    r.delegate("targets", "c", paths=["b/*", "c/*"])
    r.add_target("b/y.txt", b"from c, shadowed by terminating b\n", role="c")
    r.add_target("b/only-c.txt", b"unreachable: b is terminating\n", role="c")
    r.add_target("c/z.txt", b"from c\n", role="c")
    prefix = hashlib.sha256(b"h/file.txt").hexdigest()[:2]
    r.delegate("targets", "hashed", prefixes=[prefix])
    r.add_target("h/file.txt", b"found by hash prefix\n", role="hashed")
    # a "diamond": role "release" is delegated by pa and by pb with different keys, and signed
    # with pa's key only; through pb it must not verify
    r.delegate("targets", "pa", paths=["team-a/*"])
    r.delegate("targets", "pb", paths=["team-b/*"])
    r.delegate("pa", "release", paths=["team-a/*"])
    signer_a, release = r.signers["release"], r.roles["release"]
    r.delegate("pb", "release", paths=["team-b/*"])
    r.signers["release"], r.roles["release"] = signer_a, release
    r.add_target("team-a/file.txt", b"trusted A\n", role="release")
    r.add_target("team-b/file.txt", b"malicious B\n", role="release")
    r.publish()
    r.write(out / "s0")


def plain(out):
    r = Repo(consistent=False, keytypes=("ecdsa",) * 4)
    r.add_target("dir/file.txt", b"version one\n")
    r.publish()
    r.write(out / "s0")
    r.add_target("dir/file.txt", b"version two, longer\n")
    r.publish()
    r.write(out / "s1")


def attacks(out):
    r = Repo(hashes=True)
    r.add_target("file1.txt", b"one\n")
    r.publish()
    r.write(out / "s0")
    r.add_target("file2.txt", b"two\n")
    r.publish()
    r.write(out / "s1")

    # a new timestamp naming an older snapshot version (5.4.3.2)
    f = r.fork()
    f.timestamp.version += 1
    f.timestamp.snapshot_meta = f.meta(f.files["snapshot"][1], 1)
    f.sign("timestamp", f.timestamp)
    f.write(out / "ts_names_old_snapshot")

    # a new snapshot naming an older targets version (5.5.5)
    f = r.fork()
    f.snapshot.version += 1
    f.snapshot.meta["targets.json"] = f.meta(f.files["targets"][1], 1)
    sdata = f.sign("snapshot", f.snapshot)
    f.timestamp.snapshot_meta = f.meta(sdata, f.snapshot.version)
    f.publish(timestamp_only=True)
    f.write(out / "snapshot_names_old_targets")

    # timestamp threshold raised to 2, new timestamp signed by one key only
    f = r.fork()
    extra = CryptoSigner.generate_ed25519()
    f.root.add_key(extra.public_key, "timestamp")
    f.root.roles["timestamp"].threshold = 2
    f.root.version += 1
    f.sign("root", f.root)
    f.publish(timestamp_only=True)
    f.write(out / "under_threshold")


def expiry(out):
    for name, exp in {
        "root": {"root": 3},
        "snapshot": {"snapshot": 3, "timestamp": 30},
        "targets": {"targets": 3, "timestamp": 30},
    }.items():
        r = Repo(expires=exp)
        r.add_target("file1.txt", b"one\n")
        r.publish()
        r.write(out / name / "s0")


def rotation(out):
    r = Repo()
    r.add_target("file1.txt", b"one\n")
    for _ in range(3):
        r.publish()
    r.write(out / "s0")  # timestamp v4
    # root key A -> B and timestamp key rotated; the timestamp starts again at version 1
    r.rotate_root("root")
    r.rotate_root("timestamp")
    r.timestamp.version = 1
    r.files.pop("timestamp")
    r.publish(timestamp_only=True)
    r.write(out / "s1")
    base = r.fork()
    # a legitimate second rotation B -> C (root v4, signed by B and C)
    r.rotate_root("root")
    r.write(out / "s2")

    # attacks on the root update from s1 (trusted root v3 with root key B)
    c = CryptoSigner.generate_ed25519()
    f = base.fork()
    for k in list(f.root.roles["root"].keyids):
        f.root.revoke_key(k, "root")
    f.root.add_key(c.public_key, "root")
    f.root.version += 1
    g = f.fork()
    f.sign("root", f.root, [c])
    f.write(out / "not_signed_by_old")
    g.sign("root", g.root, base.signers["root"])
    g.write(out / "not_signed_by_new")
    # the current root again under the next version's name
    f = base.fork()
    f.files["root"][base.root.version + 1] = f.files["root"][base.root.version]
    f.write(out / "replayed_root")


def main():
    out = Path(sys.argv[1])
    scenarios = {"delegations": delegations, "plain": plain, "attacks": attacks, "expiry": expiry, "rotation": rotation}
    for name in sys.argv[2:] or list(scenarios):
        scenarios[name](out / name)


if __name__ == "__main__":
    main()
