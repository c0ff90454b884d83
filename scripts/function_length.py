#!/usr/bin/env python3
"""function_length.py — no C function in walrev is longer than a limit (150
lines, issue 15): a longer one is split into named steps. Reads every .c file
git tracks (or every .c file below the root outside a git checkout, build
directories left out) as text: a function is a top-level brace block whose
head has a parameter list and is not a struct, union, enum or initializer;
its length runs from the line of its name to its closing brace. Strings,
character constants and comments are skipped, so braces inside them do not
count. Usage: function_length.py [--max N] [--top N] [ROOT]. Exit 1 when a
function is longer than --max (each listed as path:line name lines), 0
otherwise; --top N also prints the N longest.
"""
import argparse
import os
import re
import subprocess
import sys

HEAD_NOT_FUNCTION = re.compile(r'^\s*(typedef\b|struct\b|union\b|enum\b|extern\s+"C")|=\s*$|=\s*\{?$')


def c_files(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard", "*.c"], check=True, capture_output=True, text=True)
        return [os.path.join(root, p) for p in out.stdout.split("\n") if p]
    except (OSError, subprocess.CalledProcessError):
        found = []
        for d, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if not x.startswith(("build", "."))]
            found += [os.path.join(d, f) for f in files if f.endswith(".c")]
        return found


def code_only(text):
    """text with comments, strings and character constants blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + (c if j - 1 > i else ""))
            i = j
        elif c == "#" and (i == 0 or text[i - 1] == "\n"):
            # a preprocessor line (with its continuations) holds no function body
            j = i
            while True:
                k = text.find("\n", j)
                if k < 0:
                    k = n
                    break
                if text[k - 1] != "\\":
                    break
                j = k + 1
            out.append(re.sub(r"[^\n]", " ", text[i:k]))
            i = k
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    """(name, first line, last line) of each function defined in path."""
    with open(path, encoding="utf-8", errors="replace") as f:
        code = code_only(f.read())
    found = []
    depth = 0
    head_start = 0  # offset where the current top-level declaration began
    start = None
    for i, c in enumerate(code):
        if depth == 0 and c in ";}":
            head_start = i + 1
        if c == "{":
            if depth == 0:
                head = code[head_start:i]
                m = re.search(r"([A-Za-z_]\w*)\s*\([^;{}]*\)[^;{}()]*$", head, re.S)
                if m and not HEAD_NOT_FUNCTION.search(head.strip()) and "=" not in head[:m.start()]:
                    start = (m.group(1), code.count("\n", 0, head_start + m.start(1)) + 1)
                else:
                    start = None
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                if start:
                    found.append((start[0], start[1], code.count("\n", 0, i) + 1))
                start = None
                head_start = i + 1
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max", type=int, default=150)
    ap.add_argument("--top", type=int, default=0)
    ap.add_argument("root", nargs="?", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    rows = []
    for path in sorted(c_files(root)):
        for name, first, last in functions(path):
            rows.append((last - first + 1, os.path.relpath(path, root), first, name))
    rows.sort(key=lambda r: (-r[0], r[1], r[2]))
    for n, path, line, name in rows[:a.top]:
        print(f"{n:5d} {path}:{line} {name}")
    long = [r for r in rows if r[0] > a.max]
    for n, path, line, name in long:
        print(f"{path}:{line}: {name} is {n} lines, over {a.max}: split it into named steps", file=sys.stderr)
    print(f"{len(rows)} functions, longest {rows[0][0] if rows else 0} lines, {len(long)} over {a.max}")
    return 1 if long else 0


if __name__ == "__main__":
    sys.exit(main())
