"""random_ops.py - random file operations on a faissfs mount and on a plain directory
in lockstep, checked after every step.

    random_ops.py MOUNT_DIR PLAIN_DIR SEED STEPS [STATE_FILE]

Operations on a small tree (3 directories, 10 names): create (O_EXCL and O_TRUNC),
pwrite at random offsets and sizes (holes, chunk edges crossed), truncate and
ftruncate (grow and shrink), a write through a shared writable mmap, rename (over a
file, into another directory, of a directory), link, unlink, fsync, mkdir, rmdir, and
file descriptors kept open across other operations (read and fstat after their name
was removed or replaced).  An in-memory model holds each file's bytes (names of one
file share them); after every step the result (value or errno) of the call on the
mount must equal the one on the plain directory, and every name's type, size, link
count and hard-link group, and every file's bytes, must equal the plain directory's
and the model's.  The first mismatch prints the seed, the step, the operation and
the difference, and exits 1.

STATE_FILE: the model is loaded from it if it exists (a run after a remount, which
first checks the whole tree) and saved to it at the end, with every fd closed.
"""
import errno
import hashlib
import mmap
import os
import pickle
import random
import stat
import sys

DIRS = ["", "d1", "d2"]
NAMES = [f"f{i}" for i in range(10)]
MAXSIZE = 600 * 1024


class Model:
    def __init__(self):
        self.files = {}  # path -> file id
        self.data = {}   # file id -> bytearray
        self.next = 0

    def new(self):
        self.next += 1
        self.data[self.next] = bytearray()
        return self.next

    def drop_unused(self, keep):
        used = set(self.files.values()) | set(keep)
        for fid in list(self.data):
            if fid not in used:
                del self.data[fid]


class Run:
    def __init__(self, mnt, plain, seed, state):
        self.roots = (mnt, plain)
        self.rng = random.Random(seed)
        self.seed = seed
        self.m = Model()
        self.dirs = {""}
        self.fds = []  # (fd on mount, fd on plain, file id)
        self.state = state
        if state and os.path.exists(state):
            with open(state, "rb") as f:
                self.m, self.dirs = pickle.load(f)

    # --- the lockstep call -----------------------------------------------------
    def both(self, fn):
        out = []
        for i, root in enumerate(self.roots):
            try:
                out.append(("ok", fn(root, i)))
            except OSError as e:
                out.append(("err", errno.errorcode.get(e.errno, e.errno)))
        return out

    def fail(self, step, what, detail):
        print(f"FAIL: seed {self.seed} step {step}: {what}\n   {detail}")
        sys.exit(1)

    # --- checks ----------------------------------------------------------------------
    def facts(self, root):
        out, groups = {}, {}
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                rel = os.path.relpath(p, root)
                st = os.lstat(p)
                d = [stat.S_IFMT(st.st_mode), st.st_nlink, groups.setdefault(st.st_ino, rel)]
                if stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as f:
                        d += [st.st_size, hashlib.sha1(f.read()).hexdigest()]
                out[rel] = d
        return out

    def check_tree(self, step, what):
        a, b = self.facts(self.roots[0]), self.facts(self.roots[1])
        if a != b:
            diff = [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            kept = [(os.fstat(m).st_ino, os.fstat(m).st_nlink) for m, _, _ in self.fds]
            inos = {k: os.lstat(os.path.join(self.roots[0], k)).st_ino for k, _, _ in diff}
            self.fail(step, what, f"tree differs (name: mount, plain): {diff[:5]}; mount "
                      f"inodes {inos}, kept fds (inode, nlink) {kept}")
        for path, fid in self.m.files.items():
            want = hashlib.sha1(bytes(self.m.data[fid])).hexdigest()
            if a.get(path, [None] * 5)[4] != want:
                self.fail(step, what, f"{path}: bytes differ from the model "
                          f"(size {a.get(path)}, model {len(self.m.data[fid])})")
        if set(k for k, v in a.items() if v[0] == stat.S_IFREG) != set(self.m.files):
            self.fail(step, what, f"files {sorted(k for k, v in a.items() if v[0] == stat.S_IFREG)}"
                      f" vs model {sorted(self.m.files)}")

    # --- operations ------------------------------------------------------------------
    def rpath(self):
        return os.path.join(self.rng.choice(sorted(self.dirs)), self.rng.choice(NAMES))

    def op(self):
        r = self.rng
        kind = r.choices(
            ["create", "write", "truncate", "ftruncate", "mmap", "rename", "rename_dir",
             "link", "unlink", "fsync", "mkdir", "rmdir", "keep", "fdio", "close"],
            [8, 14, 5, 3, 4, 6, 1, 5, 5, 2, 2, 2, 3, 5, 3])[0]
        return getattr(self, "op_" + kind)()

    def op_create(self):
        p, excl = self.rpath(), self.rng.random() < 0.5
        flags = os.O_CREAT | os.O_WRONLY | (os.O_EXCL if excl else os.O_TRUNC)
        res = self.both(lambda root, i: os.close(os.open(os.path.join(root, p), flags, 0o644)))
        if res[1][0] == "ok":
            if p in self.m.files:
                self.m.data[self.m.files[p]][:] = b""
            else:
                self.m.files[p] = self.m.new()
        return f"create {p} {'excl' if excl else 'trunc'}", res

    def payload(self):
        n = self.rng.choice([1, 17, 4096, 65536, 65537, 200000, 300000])
        return self.rng.randbytes(n) if self.rng.random() < 0.7 else bytes(n)

    def op_write(self):
        p, buf = self.rpath(), self.payload()
        off = self.rng.randrange(0, MAXSIZE - len(buf))

        def fn(root, i):
            fd = os.open(os.path.join(root, p), os.O_WRONLY)
            try:
                return os.pwrite(fd, buf, off)
            finally:
                os.close(fd)
        res = self.both(fn)
        if res[1][0] == "ok":
            d = self.m.data[self.m.files[p]]
            if len(d) < off:
                d.extend(bytes(off - len(d)))
            d[off:off + len(buf)] = buf
        return f"pwrite {p} {len(buf)}@{off}", res

    def resize(self, fid, size):
        d = self.m.data[fid]
        if size < len(d):
            del d[size:]
        else:
            d.extend(bytes(size - len(d)))

    def op_truncate(self):
        p, size = self.rpath(), self.rng.randrange(0, MAXSIZE)
        res = self.both(lambda root, i: os.truncate(os.path.join(root, p), size))
        if res[1][0] == "ok":
            self.resize(self.m.files[p], size)
        return f"truncate {p} {size}", res

    def op_ftruncate(self):
        p, size = self.rpath(), self.rng.randrange(0, MAXSIZE)

        def fn(root, i):
            fd = os.open(os.path.join(root, p), os.O_RDWR)
            try:
                os.ftruncate(fd, size)
            finally:
                os.close(fd)
        res = self.both(fn)
        if res[1][0] == "ok":
            self.resize(self.m.files[p], size)
        return f"ftruncate {p} {size}", res

    def op_mmap(self):
        p = self.rpath()
        buf = self.rng.randbytes(self.rng.choice([10, 5000, 70000]))
        end = self.rng.randrange(len(buf), MAXSIZE)

        def fn(root, i):
            fd = os.open(os.path.join(root, p), os.O_RDWR)
            try:
                if os.fstat(fd).st_size < end:
                    os.ftruncate(fd, end)
                mm = mmap.mmap(fd, end, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                mm[end - len(buf):end] = buf
                mm.flush()
                mm.close()
            finally:
                os.close(fd)
        res = self.both(fn)
        if res[1][0] == "ok":
            d = self.m.data[self.m.files[p]]
            if len(d) < end:
                d.extend(bytes(end - len(d)))
            d[end - len(buf):end] = buf
        return f"mmap write {p} {len(buf)} ending at {end}", res

    def op_rename(self):
        a, b = self.rpath(), self.rpath()
        res = self.both(lambda root, i: os.rename(os.path.join(root, a), os.path.join(root, b)))
        if res[1][0] == "ok" and a != b and self.m.files.get(a) != self.m.files.get(b):
            self.m.files[b] = self.m.files.pop(a)
        return f"rename {a} {b}", res

    def op_rename_dir(self):
        a, b = self.rng.choice(["d1", "d2"]), self.rng.choice(["d1", "d2", "d3"])
        res = self.both(lambda root, i: os.rename(os.path.join(root, a), os.path.join(root, b)))
        if res[1][0] == "ok" and a != b:
            self.dirs.discard(a)
            self.dirs.add(b)
            self.m.files = {(b + k[len(a):] if k.startswith(a + "/") else k): v
                            for k, v in self.m.files.items()}
        return f"rename dir {a} {b}", res

    def op_link(self):
        a, b = self.rpath(), self.rpath()
        res = self.both(lambda root, i: os.link(os.path.join(root, a), os.path.join(root, b)))
        if res[1][0] == "ok":
            self.m.files[b] = self.m.files[a]
        return f"link {a} {b}", res

    def op_unlink(self):
        p = self.rpath()
        res = self.both(lambda root, i: os.unlink(os.path.join(root, p)))
        if res[1][0] == "ok":
            del self.m.files[p]
        return f"unlink {p}", res

    def op_fsync(self):
        p = self.rpath()

        def fn(root, i):
            fd = os.open(os.path.join(root, p), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return f"fsync {p}", self.both(fn)

    def op_mkdir(self):
        d = self.rng.choice(["d1", "d2", "d3"])
        res = self.both(lambda root, i: os.mkdir(os.path.join(root, d)))
        if res[1][0] == "ok":
            self.dirs.add(d)
        return f"mkdir {d}", res

    def op_rmdir(self):
        d = self.rng.choice(["d1", "d2", "d3"])
        res = self.both(lambda root, i: os.rmdir(os.path.join(root, d)))
        if res[1][0] == "ok":
            self.dirs.discard(d)
        return f"rmdir {d}", res

    def op_keep(self):
        p = self.rpath()
        res = self.both(lambda root, i: os.open(os.path.join(root, p), os.O_RDWR))
        if res[0][0] == "ok" and res[1][0] == "ok":
            self.fds.append((res[0][1], res[1][1], self.m.files[p]))
            res = [("ok", "fd"), ("ok", "fd")]
        else:
            for side in res:
                if side[0] == "ok":
                    os.close(side[1])
        return f"open {p} (kept)", res

    def op_fdio(self):
        if not self.fds:
            return "no fd", [("ok", None), ("ok", None)]
        fdm, fdp, fid = self.rng.choice(self.fds)
        buf, off = self.payload()[:70000], self.rng.randrange(0, MAXSIZE // 2)

        def fn(root, i):
            fd = (fdm, fdp)[i]
            os.pwrite(fd, buf, off)
            st = os.fstat(fd)
            return st.st_size, st.st_nlink, hashlib.sha1(os.pread(fd, MAXSIZE * 2, 0)).hexdigest()
        res = self.both(fn)
        if res[1][0] == "ok":
            d = self.m.data[fid]
            if len(d) < off:
                d.extend(bytes(off - len(d)))
            d[off:off + len(buf)] = buf
            if res[1][1][2] != hashlib.sha1(bytes(d)).hexdigest():
                res.append(("model", "bytes of the kept file differ from the model"))
        return f"kept fd: pwrite {len(buf)}@{off}, fstat, read", res

    def op_close(self):
        if not self.fds:
            return "no fd", [("ok", None), ("ok", None)]
        fdm, fdp, fid = self.fds.pop(self.rng.randrange(len(self.fds)))
        return "close a kept fd", self.both(lambda root, i: os.close((fdm, fdp)[i]))

    # --- the run -------------------------------------------------------------------------
    def run(self, steps):
        self.check_tree(0, "start")
        for step in range(1, steps + 1):
            what, res = self.op()
            if os.environ.get("RANDOM_OPS_TRACE"):
                print(f"   {step}: {what}: {res[0]}")
            if res[0] != res[1] or len(res) > 2:
                self.fail(step, what, f"mount: {res[0]}  plain: {res[1]}  {res[2:]}")
            self.m.drop_unused(fid for _, _, fid in self.fds)
            self.check_tree(step, what)
        for fdm, fdp, _ in self.fds:
            os.close(fdm)
            os.close(fdp)
        self.fds = []
        self.m.drop_unused([])
        if self.state:
            with open(self.state, "wb") as f:
                pickle.dump((self.m, self.dirs), f)
        print(f"   ok: seed {self.seed}: {steps} steps, every result, name, link count and "
              f"byte as on the plain directory and in the model")


if __name__ == "__main__":
    mnt, plain, seed, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    Run(mnt, plain, seed, sys.argv[5] if len(sys.argv) > 5 else None).run(steps)
