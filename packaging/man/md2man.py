#!/usr/bin/python3
"""md2man.py - turns store/FORMAT.md into the man page faissfs-format(5).

    packaging/man/md2man.py store/FORMAT.md > packaging/man/faissfs-format.5

Knows the Markdown that FORMAT.md uses and nothing more: ATX headings, paragraphs,
pipe tables (rendered with tbl), fenced code blocks, "-" and "1." lists with
indented continuation lines, `code` and **bold**.  Anything else passes through as
text.  The output is committed; tests/integration/test_help_vs_man.sh checks that
it is up to date, so edit FORMAT.md and run this again.
"""
import re
import sys

TITLE = "FAISSFS-FORMAT"
SECTION = "5"


def esc(text):
    """Escapes roff specials in running text and applies inline markup."""
    text = text.replace("\\", "\\e")
    text = text.replace("-", "\\-")
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for p in parts:
        if len(p) >= 2 and p.startswith("`") and p.endswith("`"):
            out.append("\\fB" + p[1:-1] + "\\fR")
        else:
            p = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", p)
            out.append(p)
    return "".join(out)


def line_out(text):
    """A text line, safe from being read as a request."""
    if text.startswith(".") or text.startswith("'"):
        return "\\&" + text
    return text


def table(rows):
    cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
    head, body = cells[0], [c for c in cells[2:]]
    align = []
    for spec in (c.strip() for c in rows[1].strip().strip("|").split("|")):
        align.append("r" if spec.endswith(":") and not spec.startswith(":") else "l")
    out = [".TS", "allbox tab(\x07);", " ".join(a + "b" for a in align),
           " ".join(a + "x" if a == "l" and n == len(align) - 1 else a
                    for n, a in enumerate(align)) + "."]
    out.append("\x07".join(esc(c) for c in head))
    for r in body:
        r = r + [""] * (len(head) - len(r))
        out.append("\x07".join("T{\n" + line_out(esc(c)) + "\nT}" for c in r))
    out.append(".TE")
    return out


def convert(md):
    lines = md.split("\n")
    out = ['.\\" Generated from store/FORMAT.md by packaging/man/md2man.py; do not edit.',
           '.TH %s %s "" "faissfs" "File Formats"' % (TITLE, SECTION),
           ".ad l",
           ".SH NAME",
           "faissfs-format \\- the on-disk format of a faissfs store, version 1",
           ".SH SYNOPSIS",
           "STORE/.faissfs/superblock, STORE/<tenant>/<index>/<file> objects",
           ".SH DESCRIPTION"]
    i = 0
    in_list = False
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("```"):
            out.append(".PP")
            out.append(".nf")
            out.append(".ft CR")
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                out.append(line_out(lines[i].replace("\\", "\\e").replace("-", "\\-")))
                i += 1
            out += [".ft R", ".fi"]
            i += 1
            in_list = False
            continue
        m = re.match(r"^(#+)\s+(.*)$", ln)
        if m:
            level, text = len(m.group(1)), m.group(2)
            if level == 1:
                out += [".PP", line_out(esc(text))]
            elif level == 2:
                out.append('.SH "%s"' % esc(text).upper().replace('"', ""))
            else:
                out.append('.SS "%s"' % esc(text).replace('"', ""))
            i += 1
            in_list = False
            continue
        if ln.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            out += table(rows)
            in_list = False
            continue
        if not ln.strip():
            i += 1
            continue
        m = re.match(r"^(\d+\.|-)\s+(.*)$", ln)
        if m:
            para = [m.group(2)]
            i += 1
            while i < len(lines) and lines[i].startswith("   ") and lines[i].strip():
                para.append(lines[i].strip())
                i += 1
            tag = m.group(1) if m.group(1) != "-" else "\\(bu"
            out += ['.IP "%s" 4' % tag] + [line_out(esc(p)) for p in para]
            in_list = True
            continue
        para = []
        while (i < len(lines) and lines[i].strip() and not lines[i].startswith("|") and
               not lines[i].startswith("```") and not re.match(r"^(#+\s|\d+\.\s|-\s)", lines[i])):
            para.append(lines[i].strip())
            i += 1
        out.append(".PP")
        out += [line_out(esc(p)) for p in para]
        in_list = False
    out += [".SH SEE ALSO", "\\fBfaissfs\\fR(1), \\fBzstd\\fR(1), RFC 8878"]
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: md2man.py FORMAT.md > faissfs-format.5\n")
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(convert(f.read()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
