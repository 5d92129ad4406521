#!/usr/bin/env bash
# test_help_vs_man.sh - the command line and its man pages agree.
#
# - The commands of `faissfs --help` are exactly the "faissfs CMD" sections of
#   faissfs(1).
# - For each command, the options of `faissfs CMD --help` (every line starting
#   "  -"; "-o a, b" lists count as "-o a" and "-o b") are exactly the .TP entries
#   of its section.  Nothing is listed by hand here, so a new option fails this
#   test until both sides document it.
# - Every command answers -h, --help and --version with exit 0, an unknown option
#   or missing arguments with exit 2 (as faissfs(1) documents); so does an
#   unknown command.
# - faissfs-format.5 is what packaging/man/md2man.py makes of store/FORMAT.md.
# - The man pages format without groff warnings.
# No mount needed, but lib.sh skips without FUSE like the other tests.
. "$(dirname "$0")/lib.sh"

top=$IT_DIR/../..
man1=$top/packaging/man/faissfs.1

say "faissfs --help and every command's --help against faissfs(1)"
"$PYTHON" - "$FAISSFS" "$man1" <<'PY'
import re, shlex, subprocess, sys

faissfs, man_path = sys.argv[1], sys.argv[2]
bad = []


def run(*args):
    p = subprocess.run([faissfs, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def keys_of(spec):
    """'-h, --help' -> {'-h', '--help'}; '-o a=N, b' -> {'-o a', '-o b'};
    '--level N' -> {'--level'}."""
    keys, last = set(), None
    for item in (i.strip() for i in spec.split(",")):
        if not item:
            continue
        if item.startswith("-o ") or item == "-o":
            name = re.split(r"[=\s\[]", item[3:].strip())[0]
            keys.add("-o " + name)
            last = "-o"
            if " " in item[3:].strip():
                break
        elif item.startswith("-"):
            keys.add(re.split(r"[=\s\[]", item)[0])
            last = None
            if " " in item:
                break  # "--level N  zstd level, ..." or a description
        elif last == "-o" and re.fullmatch(r"[a-z_][a-z0-9_]*(=\S*)?", item):
            keys.add("-o " + item.split("=")[0])
        else:
            break  # the description has started
    return keys


def help_options(text):
    keys = set()
    for line in text.splitlines():
        m = re.match(r"^ {1,4}(-\S.*?)(?: {2,}|$)", line)
        if m:
            keys |= keys_of(m.group(1))
    return keys


def roff_text(line):
    """The text of one roff line: macros with alternating fonts joined."""
    line = line.rstrip("\n")
    m = re.match(r"^\.(B|I|BR|BI|IB|IR|RB|RI)\s+(.*)$", line)
    if m:
        words = shlex.split(m.group(2).replace("\\", "\\\\"))
        line = ("" if len(m.group(1)) == 2 else " ").join(words)
    line = re.sub(r"\\f[BIRP]", "", line)
    return line.replace("\\-", "-").replace("\\e", "\\").replace("\\\\", "\\")


# faissfs(1): .SS "faissfs CMD ..." sections and the .TP entries in them.
man_cmds, section = {}, None
lines = open(man_path).read().splitlines()
for i, line in enumerate(lines):
    if line.startswith(".SH"):
        section = None
    m = re.match(r'^\.SS\s+"?faissfs\s+([a-z]+)', line)
    if m:
        section = man_cmds.setdefault(m.group(1), set())
        continue
    if section is not None and line.startswith(".TP") and i + 1 < len(lines):
        section |= keys_of(roff_text(lines[i + 1]))

rc, top_help, _ = run("--help")
help_cmds = re.findall(r"^  ([a-z]+) {2,}", top_help, re.M)
if rc != 0 or not help_cmds:
    bad.append(f"faissfs --help: exit {rc}, commands {help_cmds}")
for c in sorted(set(help_cmds) - set(man_cmds)):
    bad.append(f"command '{c}' is in faissfs --help but has no section in faissfs(1)")
for c in sorted(set(man_cmds) - set(help_cmds)):
    bad.append(f"faissfs(1) documents a command '{c}' that faissfs --help does not list")

n = 0
for c in help_cmds:
    rc, out, err = run(c, "--help")
    if rc != 0 or not out:
        bad.append(f"faissfs {c} --help: exit {rc}, stdout {len(out)} bytes")
        continue
    h = help_options(out)
    m = man_cmds.get(c, set())
    for k in sorted(h - m):
        bad.append(f"faissfs {c}: option '{k}' is in --help but not in faissfs(1)")
    for k in sorted(m - h):
        bad.append(f"faissfs {c}: option '{k}' is in faissfs(1) but not in --help")
    n += len(h)
    for args, want in (((c, "-h"), 0), ((c, "--version"), 0), ((c, "--no-such-option"), 2),
                       ((c,), 2)):
        rc, out, err = run(*args)
        if rc != want:
            bad.append(f"faissfs {' '.join(args)}: exit {rc}, expected {want}")
        if want == 0 and not out:
            bad.append(f"faissfs {' '.join(args)}: nothing on stdout")
        if want == 2 and not err:
            bad.append(f"faissfs {' '.join(args)}: exit 2 without a message on stderr")
    rc, out, _ = run(c, "--version")
    if not out.startswith("faissfs "):
        bad.append(f"faissfs {c} --version printed {out!r}")

for args, want in ((("no-such-command",), 2), ((), 2), (("--version",), 0), (("help", "init"), 0)):
    rc, _, _ = run(*args)
    if rc != want:
        bad.append(f"faissfs {' '.join(args)}: exit {rc}, expected {want}")

for b in bad:
    print("   MISMATCH:", b)
if bad:
    sys.exit(1)
print(f"   ok: {len(help_cmds)} commands, {n} options: --help and faissfs(1) agree; "
      "-h/--help/--version exit 0, bad options, no arguments and bad commands exit 2")
PY
[ $? = 0 ] || fail "--help and faissfs(1) disagree (see above)"

say "faissfs-format.5 is generated from store/FORMAT.md"
"$PYTHON" "$top/packaging/man/md2man.py" "$top/store/FORMAT.md" >"$T/format.5" ||
	fail "md2man.py failed"
cmp -s "$T/format.5" "$top/packaging/man/faissfs-format.5" ||
	fail "packaging/man/faissfs-format.5 is stale: run packaging/man/md2man.py store/FORMAT.md > packaging/man/faissfs-format.5"
ok "up to date"

say "the man pages format without warnings"
if ! command -v groff >/dev/null; then
	skip "no groff"
else
	for page in "$man1" "$top"/packaging/man/faissfs-format.5 "$top"/packaging/man/mount.faissfs.8; do
		groff -t -man -ww -z -Tutf8 "$page" 2>"$T/groff.txt" || fail "groff failed on $page"
		if [ -s "$T/groff.txt" ]; then
			sed 's/^/   groff: /' "$T/groff.txt" >&2
			fail "groff warns about $page"
		fi
	done
	ok "faissfs.1, faissfs-format.5, mount.faissfs.8"
fi

say "bash completion (packaging/completion/faissfs) offers what --help lists"
bin_dir=$T/bin
mkdir -p "$bin_dir" "$T/cdir/sub"
ln -s "$FAISSFS" "$bin_dir/faissfs"
: >"$T/cdir/file.faiss"
comp_out=$(PATH=$bin_dir:$PATH bash -c '
	. "$1"
	cd "$2"
	# c LINE WORD...: completes at the end of LINE, COMP_WORDS as bash would split it
	c() { COMP_LINE=$1; COMP_POINT=${#1}; shift; COMP_WORDS=("$@")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _faissfs
		echo "$COMP_LINE|${COMPREPLY[*]}"; }
	c "faissfs im" faissfs im
	c "faissfs import --l" faissfs import --l
	c "faissfs verify --" faissfs verify --
	c "faissfs mount st mnt -o cache_s" faissfs mount st mnt -o cache_s
	c "faissfs mount st mnt -o cache_size=2G,thr" faissfs mount st mnt -o cache_size = 2G,thr
	c "faissfs mount st mnt -o log_level=de" faissfs mount st mnt -o log_level = de
	c "faissfs init cdir/s" faissfs init cdir/s
	c "faissfs inspect cdir/f" faissfs inspect cdir/f
' _ "$top/packaging/completion/faissfs" "$T" 2>&1)
expect_comp() {
	grep -qxF "$1|$2" <<<"$comp_out" || fail "completing '$1': got '$(grep -F "$1|" <<<"$comp_out")', want '$2'"
}
expect_comp "faissfs im" "import"
expect_comp "faissfs import --l" "--level"
verify_opts=$("$FAISSFS" verify --help | grep -oE '^ {1,4}-[^ ]+(, -[^ ]+)*' | tr ',' '\n' |
	sed 's/^ *//' | grep -- '^--' | sort -u | tr '\n' ' ')
expect_comp "faissfs verify --" "${verify_opts}--version"
expect_comp "faissfs mount st mnt -o cache_s" "cache_size="
expect_comp "faissfs mount st mnt -o cache_size=2G,thr" "2G,threads="
expect_comp "faissfs mount st mnt -o log_level=de" "debug"
expect_comp "faissfs init cdir/s" "cdir/sub"
expect_comp "faissfs inspect cdir/f" "cdir/file.faiss"
ok "commands, options, -o names and values, directories and files"
