"""crash_faissx.py - the workload and the checker of test_crash_faissx.sh.

  crash_faissx.py work MNT JOURNAL SEED WID STARTED STATE
      Does what a FAISSx server does, on the tenants of worker WID only, until an
      operation fails (the daemon was killed).  First it removes what the last
      check found torn (an unfinished save, STATE), as a server would.  Then it
      saves indices with faiss.write_index (in place, as FAISSx does, or to a temp
      name renamed over the old one), writes metadata.json and vectors.json to a
      temp file renamed over the old one, patches a few bytes of an index in place,
      sometimes fsyncs (file, then directory), and deletes whole indices.  Before each operation it appends a "begin" record with
      the SHA-256 of the content it is about to write to JOURNAL (outside the mount,
      fsync'd), and a "done" record once the operation returned.  Touches STARTED
      once its first operation is done.

  crash_faissx.py check MNT STATE JOURNAL...
      After the kill and a remount: every file below the tenants is exactly the
      content of its last completed version, or (for the operation in flight at the
      kill) of the version being written; a file written in place by an interrupted
      faiss.write_index may be incomplete (the application did not finish it) but must
      be readable, and be a prefix of the version being written (JOURNAL.inplace
      holds it).  Every index.faiss that is one of its versions loads in FAISS.
      No other file is there.  STATE (JSON: "files": path -> sha256, "torn": paths)
      holds what the previous check found; it is rewritten with what this one
      found, and the journals are emptied.  Prints one line of figures.
"""
import hashlib
import json
import os
import random
import shutil
import sys

import numpy as np

D = 32


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Journal:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.n = 0

    def rec(self, **kw):
        os.write(self.fd, (json.dumps(kw) + "\n").encode())
        os.fsync(self.fd)

    def begin(self, kind, path, data=None):
        self.n += 1
        self.rec(op="begin", id=self.n, kind=kind, path=path,
                 hash=None if data is None else sha(data))
        return self.n

    def done(self, i, synced):
        self.rec(op="done", id=i, fsync=synced)


def fsync_path(path, directory=False):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY if directory else os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path, data, synced):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        if synced:
            os.fsync(f.fileno())


def load_state(path):
    if not os.path.exists(path):
        return {"files": {}, "torn": []}
    with open(path) as f:
        return json.load(f)


def work(mnt, journal, seed, wid, started, state):
    import faiss

    r = random.Random(seed)
    rng = np.random.default_rng(seed)
    j = Journal(journal)
    tenants = [f"w{wid}t{k}" for k in range(2)]
    names = [f"idx{k}" for k in range(2)]
    train = rng.random((1000, D), dtype=np.float32)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(D), D, 16)
    ivf.train(train)
    # Leftovers of an operation interrupted by the last kill.
    for p in load_state(state)["torn"]:
        if p.split("/")[0] in tenants:
            i = j.begin("unlink", p)
            os.unlink(os.path.join(mnt, p))
            j.done(i, False)
    for t in tenants:
        for root, _, files in os.walk(os.path.join(mnt, t)):
            for f in files:
                if f.endswith(".tmp"):
                    os.unlink(os.path.join(root, f))

    def index_bytes():
        # 1.3 to 4 MB: compacted (several chunks), saved in a second or less.
        n = r.randint(10000, 30000)
        x = np.round(rng.random((n, D), dtype=np.float32), 2)
        if r.random() < 0.5:
            idx = faiss.IndexFlatL2(D)
        else:
            idx = faiss.clone_index(ivf)
        idx.add(x)
        return idx, faiss.serialize_index(idx).tobytes()

    first = True
    dev = os.stat(mnt).st_dev
    while True:
        if os.stat(mnt).st_dev != dev:
            return  # unmounted under us: never write to the directory below
        t, name = r.choice(tenants), r.choice(names)
        d = os.path.join(mnt, t, name)
        rel = os.path.join(t, name)
        synced = r.random() < 0.5
        op = r.choices(["inplace", "atomic", "json", "patch", "delete", "pause"],
                       [3, 3, 4, 2, 1, 1])[0]
        os.makedirs(d, exist_ok=True)
        if op == "inplace":
            idx, data = index_bytes()
            with open(journal + ".inplace", "wb") as f:
                f.write(data)  # what an interrupted save may have written a part of
            i = j.begin("inplace", rel + "/index.faiss", data)
            faiss.write_index(idx, os.path.join(d, "index.faiss"))
            if synced:
                fsync_path(os.path.join(d, "index.faiss"))
                fsync_path(d, True)
        elif op == "atomic":
            idx, data = index_bytes()
            i = j.begin("atomic", rel + "/index.faiss", data)
            faiss.write_index(idx, os.path.join(d, "index.faiss.tmp"))
            if synced:
                fsync_path(os.path.join(d, "index.faiss.tmp"))
            os.rename(os.path.join(d, "index.faiss.tmp"), os.path.join(d, "index.faiss"))
            if synced:
                fsync_path(d, True)
        elif op == "json":
            f = r.choice(["metadata.json", "vectors.json"])
            if f == "metadata.json":
                obj = {"name": name, "tenant": t, "dim": D, "rev": r.randint(0, 10**9)}
            else:
                n = r.randint(2000, 20000)
                obj = {"ids": list(range(n)),
                       "meta": [{"doc": r.randint(0, 10**6)} for _ in range(n // 4)]}
            data = json.dumps(obj).encode()
            i = j.begin("atomic", rel + "/" + f, data)
            write_file(os.path.join(d, f + ".tmp"), data, synced)
            os.rename(os.path.join(d, f + ".tmp"), os.path.join(d, f))
            if synced:
                fsync_path(d, True)
        elif op == "patch":
            p = os.path.join(d, "index.faiss")
            if not os.path.exists(p):
                continue
            with open(p, "rb") as fh:
                old = fh.read()
            if old[:4] != b"IxF2" or len(old) < 100000:
                continue  # vectors of a Flat index only: it stays loadable
            off = r.randrange(len(old) // 2, len(old) - 4096) & ~3
            new = np.round(rng.random(16, dtype=np.float32), 2).tobytes()
            data = old[:off] + new + old[off + len(new):]
            # One pwrite of 64 bytes: the old bytes or the new ones, never a mix.
            i = j.begin("patch", rel + "/index.faiss", data)
            fd = os.open(p, os.O_RDWR)
            try:
                assert os.pwrite(fd, new, off) == len(new)
                if synced:
                    os.fsync(fd)
            finally:
                os.close(fd)
        elif op == "delete":
            i = j.begin("delete", rel)
            shutil.rmtree(d)
            if synced:
                fsync_path(os.path.join(mnt, t), True)
        else:
            # Idle long enough for the compactor to take the files (2 s).
            i = j.begin("pause", rel)
            import time
            time.sleep(r.uniform(1.5, 3.0))
            synced = False
        j.done(i, synced)
        if first:
            open(started, "w").close()
            first = False


def check(mnt, state_path, journals):
    import faiss

    prev = load_state(state_path)
    state = prev["files"]
    # Replay: "want" is each path's last completed version (None: absent); "maybe"
    # what the operation in flight at the kill may have left instead.
    want = dict(state)
    maybe = {}
    anything = {}  # an interrupted in-place write: path -> a prefix of these bytes
    n_ops = n_synced = n_flight = 0
    stale = set(prev["torn"])  # torn at the last check, untouched since
    for jp in journals:
        begins = {}
        with open(jp) as f:
            recs = [json.loads(line) for line in f if line.endswith("\n")]
        for rec in recs:
            if rec["op"] == "begin":
                begins[rec["id"]] = rec
                continue
            b = begins.pop(rec["id"])
            stale = {p for p in stale if p != b["path"] and not p.startswith(b["path"] + "/")}
            n_ops += 1
            n_synced += rec["fsync"]
            if b["kind"] == "delete":
                for p in list(want):
                    if p.startswith(b["path"] + "/"):
                        want[p] = None
            elif b["kind"] == "unlink":
                want[b["path"]] = None
            elif b["kind"] != "pause":
                want[b["path"]] = b["hash"]
        for b in begins.values():  # at most one: the workload is sequential
            n_flight += 1
            if b["kind"] == "delete":
                for p in want:
                    if p.startswith(b["path"] + "/"):
                        maybe.setdefault(p, set()).add(None)
            elif b["kind"] == "unlink":
                maybe.setdefault(b["path"], set()).add(None)
            elif b["kind"] == "inplace":
                with open(jp + ".inplace", "rb") as f:
                    anything[b["path"]] = f.read()
                maybe.setdefault(b["path"], set()).add(b["hash"])
            elif b["kind"] != "pause":
                maybe.setdefault(b["path"], set()).add(b["hash"])
    found = {}
    prefix_ok = set()
    for root, _, files in os.walk(mnt):
        for fn in files:
            p = os.path.relpath(os.path.join(root, fn), mnt)
            if fn.endswith(".tmp"):
                continue  # the temp file of an interrupted atomic save
            with open(os.path.join(root, fn), "rb") as fh:
                data = fh.read()
            found[p] = sha(data)
            if p in anything and anything[p].startswith(data):
                prefix_ok.add(p)
    bad = []
    torn = []
    loaded = 0
    for p in sorted(set(want) | set(found) | set(maybe)):
        got = found.get(p)
        ok = {want.get(p)} | maybe.get(p, set())
        if got in ok and p not in stale:
            if got is not None and p.endswith("index.faiss"):
                idx = faiss.read_index(os.path.join(mnt, p))
                assert idx.ntotal > 0, p
                loaded += 1
            continue
        if p in prefix_ok or (p in stale and got == want.get(p)):
            torn.append(p)  # an unfinished faiss.write_index; it was read above
            continue
        why = ("missing" if got is None else
               "not a prefix of the version being written" if p in anything else
               "unexpected" if p not in want else "wrong bytes")
        bad.append(f"{p}: {why} (found {got and got[:12]}, expected one of "
                   f"{[h and h[:12] for h in ok]})")
    if bad:
        print("\n".join(bad), file=sys.stderr)
        sys.exit(f"{len(bad)} files are neither their last complete version nor the one "
                 f"being written at the kill")
    with open(state_path + ".new", "w") as f:
        json.dump({"files": found, "torn": torn}, f)
    os.replace(state_path + ".new", state_path)
    for jp in journals:
        open(jp, "w").close()
    print(f"ops {n_ops} fsynced {n_synced} inflight {n_flight} files {len(found)} "
          f"faiss_loaded {loaded} torn_inplace {len(torn)}")


if __name__ == "__main__":
    if sys.argv[1] == "work":
        try:
            work(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6],
                 sys.argv[7])
        except OSError:
            sys.exit(0)  # the daemon is gone: the test killed it
        except RuntimeError as e:
            # faiss.write_index reports a failed write as a RuntimeError
            if "Error" in str(e) or "error" in str(e):
                sys.exit(0)
            raise
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)
