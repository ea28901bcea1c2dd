#!/usr/bin/env python3
"""The source hash a gdn2 build stamps into its results (cmake/stamp.cmake), for a checkout or a commit.

Usage: scripts/source_hash.py [COMMIT ...]   (no commit: the working tree)
A results file names the hash beside the commit; this finds which commit it was built from.
"""
import hashlib
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIRS = ("src", "tools", "include")


def listing_of_tree():
    files = [os.path.join(ROOT, "CMakeLists.txt")]
    for d in DIRS:
        for base, _, names in os.walk(os.path.join(ROOT, d)):
            files += [os.path.join(base, n) for n in names]
    out = []
    for f in sorted(files):
        with open(f, "rb") as fh:
            out.append(f"{os.path.relpath(f, ROOT)} {hashlib.sha1(fh.read()).hexdigest()}\n")
    return "".join(out)


def listing_of_commit(commit):
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "CMakeLists.txt", *DIRS], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split()
    out = []
    for n in sorted(os.path.join(ROOT, x) for x in names):
        rel = os.path.relpath(n, ROOT)
        blob = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=ROOT, check=True, capture_output=True).stdout
        out.append(f"{rel} {hashlib.sha1(blob).hexdigest()}\n")
    return "".join(out)


def short(listing):
    return hashlib.sha1(listing.encode()).hexdigest()[:12]


if __name__ == "__main__":
    if len(sys.argv) == 1:
        print(short(listing_of_tree()))
    for c in sys.argv[1:]:
        print(c, short(listing_of_commit(c)))
