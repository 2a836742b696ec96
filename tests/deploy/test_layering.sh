#!/bin/sh
# The layering, read from the object files (nm): calls between the .c files of server/ form no
# circle (a file may call only files "below" it), and core/ calls nothing but itself, libc and
# libm. Each edge is a symbol one object file leaves undefined and another defines. Prints every
# edge of server/ and "N passed, N failed". docs/architecture.md describes the layers.
set -u
cd "$(dirname "$0")/../.." || exit 1
B=${BUILD:-build}
exec python3 - "$B" <<'PY'
import glob, os, subprocess, sys

b = sys.argv[1]
passed = failed = 0

def check(ok, text):
    global passed, failed
    if ok:
        passed += 1
        print("ok: " + text)
    else:
        failed += 1
        print("FAIL: " + text)

def symbols(path):
    """(defined, undefined) global symbol names of an object or shared library."""
    dyn = ["-D"] if path.endswith(".so.6") else []
    out = subprocess.run(["nm"] + dyn + [path], capture_output=True, text=True).stdout
    d, u = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 2 and f[-2] == "U":
            u.add(f[-1].split("@")[0])
        elif len(f) >= 3 and f[-2] in "TDBRCVWGSi":
            d.add(f[-1].split("@")[0])
    return d, u

def files(sub):
    objs = sorted(glob.glob(os.path.join(b, sub, "*.o")))
    # Only objects whose source is still in the tree (a stale object from a removed file
    # would make up edges).
    return [o for o in objs if os.path.exists(os.path.join(sub, os.path.basename(o)[:-2] + ".c"))]

server = files("server")
check(len(server) >= 5, "%d object files of server/ in %s" % (len(server), b))
syms = {os.path.basename(o)[:-2]: symbols(o) for o in server}
owner = {}
for name, (d, _) in syms.items():
    for s in d:
        owner[s] = name
edges = {name: sorted({owner[s] for s in u if s in owner and owner[s] != name})
         for name, (_, u) in syms.items()}
for name in sorted(edges):
    print("  %s.c -> %s" % (name, ", ".join(e + ".c" for e in edges[name]) or "(nothing)"))

# A circle: depth-first search for an edge back to a file on the current path.
def find_cycle():
    state, stack = {}, []
    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in edges[n]:
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None
    for n in sorted(edges):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None

cycle = find_cycle()
check(cycle is None, "no circle of calls between the files of server/" +
      ("" if cycle is None else ": " + " -> ".join(c + ".c" for c in cycle)))

core = files("core")
check(len(core) >= 3, "%d object files of core/ in %s" % (len(core), b))
defined = set()
for o in core:
    defined |= symbols(o)[0]
libs = set()
for lib in ("libc.so.6", "libm.so.6"):
    path = subprocess.run(["cc", "-print-file-name=" + lib], capture_output=True,
                          text=True).stdout.strip()
    libs |= symbols(os.path.realpath(path))[0]
check(len(libs) > 1000, "%d symbols of libc and libm" % len(libs))
for o in core:
    # A sanitizer build's instrumentation calls its runtime: not the code's own calls.
    outside = sorted(s for s in symbols(o)[1]
                     if s not in defined and s not in libs and s != "_GLOBAL_OFFSET_TABLE_"
                     and not s.startswith(("__asan_", "__ubsan_", "__sanitizer_", "__lsan_")))
    check(not outside, "%s calls only core/, libc and libm%s" %
          (os.path.basename(o)[:-2] + ".c", "" if not outside else ": " + ", ".join(outside)))

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
