"""posix_compare.py - the same POSIX call sequences on a faissfs mount and on a plain
directory, every result compared.

    posix_compare.py MOUNT_DIR PLAIN_DIR [CASE...]
    posix_compare.py --tree A B         two trees: the same entries, types, modes,
                                        owners, link counts, symlink targets, device
                                        numbers, hard-link groups and file bytes
    posix_compare.py --save DIR FILE    those facts of DIR, and file mtimes, to FILE
    posix_compare.py --against DIR FILE DIR's facts equal those saved in FILE

Each case runs in a fresh subdirectory of both trees.  A step's outcome is what
the call returned (a value, or the errno name), and, for stat-like steps, the
fields a local filesystem defines: type, permission bits, link count, owner, size
(for files, symlinks), rdev, mtime when the case set it, and which names share an
inode (inode numbers differ between filesystems, their grouping must not).  The
script prints every step of both sides next to each other where they differ and
exits 1 if any did; it exits 0 and prints one line per case otherwise.
"""
import errno
import hashlib
import json
import os
import socket
import stat
import sys

FIELDS = ("type", "mode", "nlink", "uid", "gid", "size", "rdev")


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


class Side:
    """One tree: runs the calls of a case below its own directory."""

    def __init__(self, top):
        self.top = top
        self.log = []

    def path(self, rel):
        return os.path.join(self.cwd, rel) if rel else self.cwd

    def start(self, case):
        self.cwd = os.path.join(self.top, case)
        os.mkdir(self.cwd)
        self.log = []

    def record(self, label, fn):
        try:
            out = fn()
        except OSError as e:
            out = "E:" + errname(e)
        self.log.append((label, out))
        return out

    def statinfo(self, st, label, times=False):
        kind = stat.S_IFMT(st.st_mode)
        d = {
            "type": {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink",
                     stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "chr",
                     stat.S_IFBLK: "blk"}.get(kind, oct(kind)),
            "mode": oct(stat.S_IMODE(st.st_mode)),
            "nlink": st.st_nlink,
            "uid": st.st_uid,
            "gid": st.st_gid,
            "size": st.st_size if kind in (stat.S_IFREG, stat.S_IFLNK) else "-",
            "rdev": st.st_rdev if kind in (stat.S_IFCHR, stat.S_IFBLK) else "-",
        }
        if times:
            d["mtime_ns"] = st.st_mtime_ns
            d["atime_ns"] = st.st_atime_ns
        return d

    # --- the calls cases use ----------------------------------------------------
    def lstat(self, rel, times=False):
        return self.record(f"lstat {rel}", lambda: self.statinfo(
            os.lstat(self.path(rel)), rel, times))

    def stat(self, rel, times=False):
        return self.record(f"stat {rel}", lambda: self.statinfo(
            os.stat(self.path(rel)), rel, times))

    def fstat(self, label, fd):
        return self.record(f"fstat {label}", lambda: self.statinfo(os.fstat(fd), label))

    def same(self, *rels):
        """Which of the names share an inode: [0, 0, 1] means the first two do."""
        def groups():
            inos = [os.lstat(self.path(r)).st_ino for r in rels]
            return [inos.index(i) for i in inos]
        return self.record("same inode " + " ".join(rels), groups)

    def same_fd(self, label, fd, *rels):
        """Whether the open file @fd is the file of each name."""
        return self.record(f"fd {label} is " + " ".join(rels), lambda: [
            os.fstat(fd).st_ino == os.lstat(self.path(r)).st_ino for r in rels])

    def do(self, label, fn):
        """Records fn(path) with path mapping the case's relative names."""
        return self.record(label, lambda: fn(self.path))

    def listdir(self, rel=""):
        return self.record(f"listdir {rel}", lambda: sorted(os.listdir(self.path(rel))))


# --- the cases ------------------------------------------------------------------------
# Each is fn(s) with s a Side; both sides run the same function.

def case_symlinks(s):
    p = s.path
    s.do("write target", lambda p: open(p("target"), "w").write("the target\n"))
    s.do("mkdir dir", lambda p: os.mkdir(p("dir")))
    s.do("symlink rel", lambda p: os.symlink("target", p("rel")))
    s.do("symlink abs", lambda p: os.symlink("/etc/hostname", p("abs")))
    s.do("symlink dangling", lambda p: os.symlink("no/such/file", p("dangling")))
    s.do("symlink to dir", lambda p: os.symlink("dir", p("todir")))
    s.do("symlink exists", lambda p: os.symlink("x", p("rel")))
    for n in ("rel", "abs", "dangling", "todir"):
        s.lstat(n)
        s.stat(n)
        s.do(f"readlink {n}", lambda p, n=n: os.readlink(p(n)))
    s.do("readlink of a file", lambda p: os.readlink(p("target")))
    s.do("read through rel", lambda p: open(p("rel")).read())
    s.do("read through abs", lambda p: open(p("abs")).read())
    s.do("read dangling", lambda p: open(p("dangling")).read())
    s.do("create in dir via todir", lambda p: open(p("todir/f"), "w").write("x"))
    s.listdir("dir")
    s.do("open O_NOFOLLOW", lambda p: os.close(os.open(p("rel"), os.O_RDONLY | os.O_NOFOLLOW)))
    s.do("lchown", lambda p: os.chown(p("rel"), 1234, 5678, follow_symlinks=False))
    s.lstat("rel")
    s.stat("rel")  # the target keeps its owner
    s.do("utime nofollow", lambda p: os.utime(p("rel"), ns=(1_000_000_123, 2_000_000_456),
                                              follow_symlinks=False))
    s.lstat("rel", times=True)
    s.do("chmod through symlink", lambda p: os.chmod(p("rel"), 0o640))
    s.stat("target")
    s.lstat("rel")
    # The rollout idiom: a new symlink under a temp name renamed over `current`.
    s.do("mkdir v1", lambda p: os.mkdir(p("v1")))
    s.do("mkdir v2", lambda p: os.mkdir(p("v2")))
    s.do("v1 file", lambda p: open(p("v1/index.faiss"), "w").write("one"))
    s.do("v2 file", lambda p: open(p("v2/index.faiss"), "w").write("two"))
    s.do("current -> v1", lambda p: os.symlink("v1", p("current")))
    s.do("read current", lambda p: open(p("current/index.faiss")).read())
    s.do("tmp -> v2", lambda p: os.symlink("v2", p("current.tmp")))
    s.do("swap", lambda p: os.rename(p("current.tmp"), p("current")))
    s.do("read current after swap", lambda p: open(p("current/index.faiss")).read())
    s.do("readlink current", lambda p: os.readlink(p("current")))
    s.lstat("current")
    s.do("rename file over symlink", lambda p: os.rename(p("v1/index.faiss"), p("abs")))
    s.lstat("abs")
    s.do("rename symlink over file", lambda p: os.rename(p("dangling"), p("target")))
    s.lstat("target")
    s.do("unlink symlink", lambda p: os.unlink(p("rel")))
    s.do("rmdir through symlink", lambda p: os.rmdir(p("todir")))
    s.do("unlink symlink to dir", lambda p: os.unlink(p("todir")))
    s.do("long target", lambda p: os.symlink("t" * 4095, p("long")))
    s.do("readlink long", lambda p: len(os.readlink(p("long"))))
    s.do("too long target", lambda p: os.symlink("t" * 4096, p("toolong")))
    s.do("hard link to symlink", lambda p: os.link(p("current"), p("current2"),
                                                   follow_symlinks=False))
    s.lstat("current")
    s.lstat("current2")
    s.same("current", "current2", "v2")
    s.listdir()


def case_hardlinks(s):
    s.do("write a", lambda p: open(p("a"), "w").write("data of a\n"))
    s.do("mkdir sub", lambda p: os.mkdir(p("sub")))
    s.do("link a b", lambda p: os.link(p("a"), p("b")))
    s.do("link a sub/c", lambda p: os.link(p("a"), p("sub/c")))
    for n in ("a", "b", "sub/c"):
        s.lstat(n)
    s.same("a", "b", "sub/c")
    s.do("append via b", lambda p: open(p("b"), "a").write("more\n"))
    s.do("read a", lambda p: open(p("a")).read())
    s.do("read sub/c", lambda p: open(p("sub/c")).read())
    s.do("chmod via c", lambda p: os.chmod(p("sub/c"), 0o600))
    s.lstat("a")
    s.do("link onto existing", lambda p: os.link(p("a"), p("b")))
    s.do("link of a dir", lambda p: os.link(p("sub"), p("sub2")))
    s.do("link of missing", lambda p: os.link(p("nope"), p("x")))
    s.do("link into missing dir", lambda p: os.link(p("a"), p("nodir/x")))
    s.do("rename a over b (same inode)", lambda p: os.rename(p("a"), p("b")))
    s.listdir()
    s.lstat("b")
    s.do("unlink b", lambda p: os.unlink(p("b")))
    s.lstat("a")
    s.lstat("sub/c")
    s.do("write x", lambda p: open(p("x"), "w").write("x"))
    s.do("rename x over a", lambda p: os.rename(p("x"), p("a")))
    s.lstat("a")
    s.lstat("sub/c")
    s.do("read sub/c again", lambda p: open(p("sub/c")).read())
    s.do("truncate via sub/c", lambda p: os.truncate(p("sub/c"), 3))
    s.do("link c d", lambda p: os.link(p("sub/c"), p("d")))
    s.do("rename d into sub", lambda p: os.rename(p("d"), p("sub/d")))
    s.lstat("sub/d")
    s.lstat("sub/c")
    s.same("sub/c", "sub/d", "a")
    s.do("read sub/d", lambda p: open(p("sub/d")).read())
    # A name of a file opened, then removed: the other names and the fd go on.
    fd = s.do("open sub/c", lambda p: os.open(p("sub/c"), os.O_RDWR))
    s.do("unlink sub/c", lambda p: os.unlink(p("sub/c")))
    if isinstance(fd, int):
        s.fstat("fd of sub/c", fd)
        s.same_fd("of sub/c", fd, "sub/d")
        s.record("pwrite fd", lambda: os.pwrite(fd, b"XY", 0))
        s.do("read sub/d", lambda p: open(p("sub/d")).read())
        s.record("close", lambda: os.close(fd))
    s.lstat("sub/d")
    s.listdir("sub")


def case_special(s):
    s.do("mkfifo", lambda p: os.mkfifo(p("fifo"), 0o640))
    s.lstat("fifo")
    s.do("mknod chr", lambda p: os.mknod(p("null"), 0o620 | stat.S_IFCHR, os.makedev(1, 3)))
    s.lstat("null")
    s.do("mknod blk", lambda p: os.mknod(p("blk"), 0o600 | stat.S_IFBLK, os.makedev(7, 200)))
    s.lstat("blk")
    s.do("mknod reg", lambda p: os.mknod(p("reg"), 0o644 | stat.S_IFREG))
    s.lstat("reg")

    def bind(p):
        sk = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sk.bind(p("sock"))
        finally:
            sk.close()
    s.do("bind socket", bind)
    s.lstat("sock")
    s.do("chmod fifo", lambda p: os.chmod(p("fifo"), 0o600))
    s.do("chown fifo", lambda p: os.chown(p("fifo"), 42, 43))
    s.do("utime fifo", lambda p: os.utime(p("fifo"), ns=(5_000_000_001, 6_000_000_002)))
    s.lstat("fifo", times=True)
    s.do("mkfifo exists", lambda p: os.mkfifo(p("fifo")))
    s.do("truncate fifo", lambda p: os.truncate(p("fifo"), 0))
    s.do("link fifo", lambda p: os.link(p("fifo"), p("fifo2")))
    s.lstat("fifo")

    def fifo_io(p):
        # Both ends from one process: O_NONBLOCK reader first, then the writer.
        r = os.open(p("fifo"), os.O_RDONLY | os.O_NONBLOCK)
        w = os.open(p("fifo"), os.O_WRONLY)
        os.write(w, b"through the pipe")
        data = os.read(r, 100)
        os.close(w)
        os.close(r)
        return data.decode()
    s.do("fifo io", fifo_io)
    s.do("rename fifo", lambda p: os.rename(p("fifo2"), p("fifo3")))
    s.listdir()
    s.do("unlink sock", lambda p: os.unlink(p("sock")))
    s.do("unlink null", lambda p: os.unlink(p("null")))
    s.listdir()


def case_unlinked_open(s):
    s.do("write f", lambda p: open(p("f"), "w").write("0123456789"))
    fd = s.do("open f rw", lambda p: os.open(p("f"), os.O_RDWR))
    rfd = s.do("open f ro", lambda p: os.open(p("f"), os.O_RDONLY))
    s.do("unlink f", lambda p: os.unlink(p("f")))
    s.do("stat f", lambda p: os.stat(p("f")).st_nlink)
    if isinstance(fd, int) and isinstance(rfd, int):
        s.fstat("rw fd", fd)
        s.fstat("ro fd", rfd)
        s.record("pread", lambda: os.pread(rfd, 100, 0).decode())
        s.record("pwrite", lambda: os.pwrite(fd, b"abc", 10))
        s.record("ftruncate", lambda: os.ftruncate(fd, 20))
        s.fstat("rw fd after", fd)
        s.record("pread after", lambda: os.pread(rfd, 100, 0).decode())
        s.record("close rw", lambda: os.close(fd))
        s.fstat("ro fd after rw closed", rfd)
        s.record("close ro", lambda: os.close(rfd))
    # An object (a file compacted by faissfs) opened read-only and then removed.
    s.do("write g", lambda p: open(p("g"), "wb").write(os.urandom(1 << 16) * 4))
    gfd = s.do("open g", lambda p: os.open(p("g"), os.O_RDONLY))
    s.do("unlink g", lambda p: os.unlink(p("g")))
    if isinstance(gfd, int):
        s.fstat("g fd", gfd)
        s.record("read g", lambda: len(os.pread(gfd, 1 << 20, 0)))
        s.record("close g", lambda: os.close(gfd))
    s.listdir()


def case_dir_nlink(s):
    s.lstat("")
    for d in ("a", "b", "a/x", "a/y", "a/y/z"):
        s.do(f"mkdir {d}", lambda p, d=d: os.mkdir(p(d)))
    s.do("write a/f", lambda p: open(p("a/f"), "w").write("f"))
    for d in ("", "a", "b", "a/y"):
        s.lstat(d)
    s.do("rename a/x to b/x", lambda p: os.rename(p("a/x"), p("b/x")))
    s.do("rename a/y to a/w", lambda p: os.rename(p("a/y"), p("a/w")))
    s.do("rename b over empty a/w? (not empty)", lambda p: os.rename(p("b"), p("a/w")))
    s.do("rmdir a/w/z", lambda p: os.rmdir(p("a/w/z")))
    s.do("rename b over empty a/w", lambda p: os.rename(p("b"), p("a/w")))
    for d in ("", "a", "a/w"):
        s.lstat(d)
    s.do("rmdir non-empty", lambda p: os.rmdir(p("a")))
    s.do("rmdir a/w/x", lambda p: os.rmdir(p("a/w/x")))
    s.do("rmdir a/w", lambda p: os.rmdir(p("a/w")))
    for d in ("", "a"):
        s.lstat(d)
    s.do("rename dir into itself", lambda p: os.rename(p("a"), p("a/inner")))


def case_names(s):
    name255 = "n" * 255
    s.do("create 255", lambda p: open(p(name255), "w").write("long name"))
    s.lstat(name255)
    s.do("create 256", lambda p: open(p("n" * 256), "w").write("x"))
    s.do("mkdir 255", lambda p: os.mkdir(p("d" * 255)))
    s.do("rename to 256", lambda p: os.rename(p(name255), p("m" * 256)))
    s.do("rename to 255", lambda p: os.rename(p(name255), p("m" * 255)))
    s.do("symlink 256", lambda p: os.symlink("t", p("s" * 256)))
    s.do("link to 256", lambda p: os.link(p("m" * 255), p("l" * 256)))
    s.do("utf-8 name", lambda p: open(p("caf\u00e9 \u2603"), "w").write("snow"))
    s.do("latin-1 name", lambda p: open(os.fsencode(p("")) + b"/caf\xe9", "w").write("x"))
    s.listdir()
    # Deep: 19 components of 200 bytes (3819 bytes from the case directory, under
    # PATH_MAX from the store root too), made with directory fds.
    comp = "c" * 200
    fds = []

    def deep(p):
        del fds[:]
        fd = os.open(p(""), os.O_RDONLY | os.O_DIRECTORY)
        fds.append(fd)
        depth = 0
        for _ in range(19):
            os.mkdir(comp, dir_fd=fd)
            fd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            fds.append(fd)
            depth += 1
        leaf = os.open("leaf", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
        os.write(leaf, b"deep")
        os.close(leaf)
        st = os.stat("leaf", dir_fd=fd)
        os.symlink("leaf", "sl", dir_fd=fd)
        os.link("leaf", "hl", src_dir_fd=fd, dst_dir_fd=fd)
        return depth, st.st_size, st.st_nlink, os.readlink("sl", dir_fd=fd)
    s.do("deep tree", deep)
    for fd in fds:
        os.close(fd)
    rel = "/".join([comp] * 19)
    s.do("stat by a long path", lambda p: os.stat(p(rel + "/leaf")).st_nlink)
    s.do("readlink by a long path", lambda p: os.readlink(p(rel + "/sl")))
    s.do("path past PATH_MAX", lambda p: os.stat(p("/".join([comp] * 21) + "/leaf")))


CASES = {
    "symlinks": case_symlinks,
    "hardlinks": case_hardlinks,
    "special": case_special,
    "unlinked_open": case_unlinked_open,
    "dir_nlink": case_dir_nlink,
    "names": case_names,
}


def tree(top, times=True):
    """Every entry below @top: path -> its facts; hard-link groups as the first path
    of each inode.  Walks with directory fds: the tree may be deeper than PATH_MAX."""
    out, first = {}, {}
    for dirpath, dirnames, filenames, dfd in os.fwalk(top):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), top)
            st = os.lstat(name, dir_fd=dfd)
            d = Side(top).statinfo(st, rel)
            # directories of faissfs change with its own temp files: no mtime
            if times and not stat.S_ISDIR(st.st_mode):
                d["mtime_ns"] = st.st_mtime_ns
            d["group"] = first.setdefault(st.st_ino, rel)
            if stat.S_ISLNK(st.st_mode):
                d["target"] = os.readlink(name, dir_fd=dfd)
            elif stat.S_ISREG(st.st_mode):
                fd = os.open(name, os.O_RDONLY, dir_fd=dfd)
                with os.fdopen(fd, "rb") as f:
                    d["bytes"] = hashlib.sha256(f.read()).hexdigest()
            out[rel] = d
    return out


def short(v):
    r = repr(v)
    return r if len(r) < 300 else r[:300] + "..."


def compare(name_a, ta, name_b, tb):
    bad = 0
    for rel in sorted(set(ta) | set(tb)):
        if ta.get(rel) != tb.get(rel):
            bad += 1
            print(f"   {short(rel)}:\n      {name_a}: {short(ta.get(rel))}\n"
                  f"      {name_b}: {short(tb.get(rel))}")
    if bad:
        print(f"FAIL: {bad} of {len(tb)} entries differ between {name_a} and {name_b}")
        sys.exit(1)
    print(f"   ok: {len(tb)} entries alike in {name_a} and {name_b}")


def main():
    if sys.argv[1] == "--tree":
        compare(sys.argv[2], tree(sys.argv[2], False), sys.argv[3], tree(sys.argv[3], False))
        return
    if sys.argv[1] == "--save":
        with open(sys.argv[3], "w") as f:
            json.dump(tree(sys.argv[2]), f)
        return
    if sys.argv[1] == "--against":
        with open(sys.argv[3]) as f:
            compare(sys.argv[3], json.load(f), sys.argv[2], tree(sys.argv[2]))
        return
    mnt, plain = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or list(CASES)
    bad = 0
    for name in names:
        sides = [Side(mnt), Side(plain)]
        for side in sides:
            side.start(name)
            CASES[name](side)
        a, b = sides[0].log, sides[1].log
        diffs = [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y]
        if len(a) != len(b):
            diffs.append((min(len(a), len(b)), ("steps", len(a)), ("steps", len(b))))
        if diffs:
            bad += 1
            print(f"FAIL {name}: {len(diffs)} of {len(b)} steps differ from the plain directory")
            for i, x, y in diffs:
                print(f"   step {i} {x[0]}:\n      faissfs: {short(x[1])}\n"
                      f"      plain:   {short(y[1])}")
        else:
            print(f"   ok: {name}: {len(b)} steps, every result as on the plain directory")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
