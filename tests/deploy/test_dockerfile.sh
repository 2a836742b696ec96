#!/bin/sh
# Static checks of the Dockerfile and .dockerignore (hadolint is not in Debian; the image is
# built and run under podman by test_container.sh where it can), and the parts of the build
# that can run without an engine:
#  - two stages, both FROM debian:bookworm-slim; exec-form ENTRYPOINT (and CMD, if any), so
#    SIGTERM reaches the server; a numeric non-root USER, the uid the RUN step creates;
#    HEALTHCHECK runs the binary's own --healthcheck (no curl or wget in the image);
#    EXPOSE 8080 and 8081, ENV QDQ_LISTEN=0.0.0.0:8080 and QDQ_GRPC_LISTEN=0.0.0.0:8081; every
#    ENV a QDQ_* variable the server knows;
#  - every RUN step is the project's installer, a make target, or image housekeeping
#    (apt list cleanup, the user): nothing CI does not run. CI runs the installer (--dev) and
#    `make test` (all, the tests, and tests/deploy/, whose test_install_layout.sh runs
#    `make install DESTDIR=...` and the result as the image's uid). Here the installer's
#    default and --runtime modes run with apt-get replaced by a stub that fails: both must find
#    everything already installed by CI's --dev, so their lists are subsets of what CI proved;
#  - COPY --from=build takes exactly what `make install DESTDIR=/out` installs;
#  - the build context that .dockerignore leaves (docker's matching rules) builds with
#    `make all`, and holds no build output or .git;
#  - the Dockerfile's usage comment and README.md show the same `docker build` and `docker run`
#    commands, and both tell podman users to build with --format docker (podman's default OCI
#    format drops HEALTHCHECK); README's podman commands are its docker commands with podman.
# Prints "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.." || exit 1
SERVER=${QDQ_SERVER:-build/qdq-server}
. tests/lib/checks.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

"$SERVER" --help 2>/dev/null | grep -o 'QDQ_[A-Z_]*' | sort -u >"$T/vars"
[ -s "$T/vars" ] || bad "no QDQ_* variables from $SERVER --help"

python3 - "$T/vars" "$T/users" >"$T/py.out" 2>&1 <<'PYEOF'
import json, re, shlex, sys
known_vars = set(open(sys.argv[1]).read().split())
results = []
def check(cond, what):
    results.append((bool(cond), what))

# Instructions, continuation lines joined, comments dropped.
text = open("Dockerfile").read()
lines, cur = [], ""
for raw in text.splitlines():
    s = raw.strip()
    if not cur and (not s or s.startswith("#")):
        continue
    if s.startswith("#"):
        continue
    cur += (" " if cur else "") + s.rstrip("\\").strip()
    if not s.endswith("\\"):
        lines.append(cur)
        cur = ""
instrs = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]
stages = []
for op, arg in instrs:
    if op == "FROM":
        stages.append([])
    if stages:
        stages[-1].append((op, arg))
    else:
        check(op == "ARG", f"only ARG before the first FROM, not {op}")

froms = [arg for op, arg in instrs if op == "FROM"]
check(len(froms) == 2, f"two stages ({len(froms)})")
check(all(f.split()[0] == "debian:bookworm-slim" for f in froms), f"every stage FROM debian:bookworm-slim: {froms}")
check(froms and re.fullmatch(r"debian:bookworm-slim AS build", froms[0], re.I),
      "the first stage is the build stage: FROM debian:bookworm-slim AS build")
final = stages[-1] if stages else []
def final_args(op):
    return [a for o, a in final if o == op]

def exec_form(arg):
    try:
        v = json.loads(arg)
    except ValueError:
        return None
    return v if isinstance(v, list) and all(isinstance(x, str) for x in v) and v else None

ep = final_args("ENTRYPOINT")
check(len(ep) == 1 and exec_form(ep[0]), f"one exec-form (JSON array) ENTRYPOINT: {ep}")
entry = exec_form(ep[0]) if ep else None
check(entry == ["/usr/local/bin/qdq-server"], f"ENTRYPOINT is the server itself: {entry}")
for cmd in final_args("CMD"):
    check(exec_form(cmd), f"CMD in exec form: {cmd}")
check(all(op != "SHELL" for op, _ in final), "no SHELL override in the runtime stage")

users = final_args("USER")
uid = None
if users:
    m = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1].strip())
    uid = int(m.group(1)) if m else None
check(uid is not None and uid != 0, f"USER is numeric and not root (Kubernetes' runAsNonRoot can verify it): {users}")
runs_final = " ".join(final_args("RUN"))
check(uid is not None and f"--uid {uid}" in runs_final, f"the runtime stage creates the user {uid}")

hc = final_args("HEALTHCHECK")
check(len(hc) == 1, "one HEALTHCHECK")
if hc:
    m = re.search(r"\bCMD\s+(\[.*\])\s*$", hc[0])
    cmd = exec_form(m.group(1)) if m else None
    check(cmd and entry and cmd == entry + ["--healthcheck"],
          f"HEALTHCHECK CMD [entrypoint, --healthcheck] in exec form: {cmd}")
check(not re.search(r"\b(curl|wget)\b", " ".join(a for _, a in final)),
      "no curl or wget in the runtime stage (the binary checks itself)")

check("8080" in " ".join(final_args("EXPOSE")).split(), "EXPOSE 8080")
env = {}
for a in final_args("ENV"):
    for tok in shlex.split(a):
        if "=" in tok:
            k, v = tok.split("=", 1)
            env[k] = v
check(env.get("QDQ_LISTEN") == "0.0.0.0:8080", f"ENV QDQ_LISTEN=0.0.0.0:8080 ({env})")
check("8081" in " ".join(final_args("EXPOSE")).split() and
      env.get("QDQ_GRPC_LISTEN") == "0.0.0.0:8081",
      f"EXPOSE 8081 and ENV QDQ_GRPC_LISTEN=0.0.0.0:8081: gRPC on every interface ({env})")
check(all(k in known_vars for k in env), f"every ENV is a QDQ_* variable of the server: {sorted(env)}")

# RUN steps, each command of each && chain.
allowed = [
    (r'sh (scripts|/tmp)/install-deps\.sh( --runtime)?', "the project's installer"),
    (r'make( -j"\$\(nproc\)")? all', "make all"),
    (r'make install DESTDIR=/out PREFIX=/usr/local', "make install (tests/deploy/test_install_layout.sh)"),
    (r'rm -rf /var/lib/apt/lists/\* /tmp/install-deps\.sh', "apt list and installer cleanup"),
    (r'groupadd --gid \d+ \w+', "the image's group (run below in a scratch /etc)"),
    (r'useradd --uid \d+ --gid \d+ --no-create-home --shell /usr/sbin/nologin \w+',
     "the image's user (run below in a scratch /etc)"),
    (r'install -d -o \d+ -g \d+ -m 0700 /var/spool/qdq', "the checkpoints' spool directory (a VOLUME)"),
]
for si, stage in enumerate(stages):
    for op, arg in stage:
        if op != "RUN":
            continue
        for part in [p.strip() for p in arg.split("&&")]:
            why = [w for r, w in allowed if re.fullmatch(r, part)]
            check(why, f"stage {si + 1} RUN step '{part}': " + (why[0] if why else
                  "not a project script or make target that CI runs"))
build_runs = " && ".join(a for o, a in stages[0] if o == "RUN") if stages else ""
check("sh scripts/install-deps.sh" in build_runs and re.search(r"make\b.* all\b", build_runs)
      and "make install DESTDIR=" in build_runs, "the build stage runs the installer, make all, make install")
check(re.search(r"install-deps\.sh --runtime", runs_final), "the runtime stage installs the --runtime list only")
copies = final_args("COPY")
check(any(c.split() == ["--from=build", "/out/usr/local/bin/qdq-server", "/usr/local/bin/qdq-server"]
          for c in copies), "the runtime stage takes the installed binary from the build stage")
check(all(c.startswith("--from=build /out/") or c.split()[0] == "scripts/install-deps.sh" for c in copies),
      f"the runtime stage copies nothing else from the context: {copies}")

# The run example: the Dockerfile's usage comment and README say the same.
def cmds(lines, tool, verb):
    out = []
    for l in lines:
        l = re.sub(r"^\s*#?\s*", "", l).strip()
        if l.startswith(f"{tool} {verb} "):
            out.append(" ".join(l.split()))
    return out
readme = open("README.md").read()
blocks = "\n".join(re.findall(r"^```sh\n(.*?)^```", readme, re.S | re.M)).splitlines()
comment = [l for l in text.splitlines() if l.startswith("#")]
for verb in ("build", "run"):
    d, r = cmds(comment, "docker", verb), cmds(blocks, "docker", verb)
    check(d and set(d) == set(r), f"the Dockerfile and README show the same `docker {verb}`: {d} / {r}")
    p = cmds(blocks, "podman", verb)
    check(p and {c.replace(" --format docker", "") for c in p} ==
          {c.replace("docker", "podman", 1) for c in r},
          f"README's `podman {verb}` is its `docker {verb}` with podman: {p}")
pb = cmds(comment, "podman", "build") + cmds(blocks, "podman", "build")
check(len(pb) >= 2 and all("--format docker" in c.split("  ")[0] for c in pb),
      f"the Dockerfile and README build with podman --format docker (keeps HEALTHCHECK): {pb}")
check(re.search(r"--format docker`?[^.]*\n?[^.]*HEALTHCHECK", readme),
      "README says why: --format docker keeps the HEALTHCHECK")

ci = open(".ci/run").read()
mk = open("Makefile").read()
check("scripts/install-deps.sh" in ci and re.search(r"\bmake\b.*\btest\b", ci),
      "CI runs the installer and make test")
check(re.search(r"^tests: all\b", mk, re.M) and re.search(r"^install: all\b", mk, re.M),
      "make test builds `all`; `install` installs it")
with open(sys.argv[2], "w") as f:
    for stage in stages:
        for op, arg in stage:
            for part in [p.strip() for p in arg.split("&&")] if op == "RUN" else []:
                if re.match(r"(groupadd|useradd) ", part):
                    f.write(part + "\n")
for good, what in results:
    print(("ok: " if good else "FAIL: ") + what)
PYEOF
cat "$T/py.out"
pass=$((pass + $(grep -c '^ok: ' "$T/py.out")))
fail=$((fail + $(grep -c '^FAIL: ' "$T/py.out")))
grep -q '^\(ok\|FAIL\): ' "$T/py.out" || bad "the Dockerfile checks did not run"

# The user and group steps, run as written against a scratch /etc (--prefix; as root only), so
# they are known to work with bookworm's shadow tools, warnings included.
if [ "$(id -u)" -eq 0 ] && [ -s "$T/users" ]; then
    mkdir -p "$T/scratch/etc"
    echo 'root:x:0:0:root:/root:/bin/sh' >"$T/scratch/etc/passwd"
    echo 'root:x:0:' >"$T/scratch/etc/group"
    echo 'root:*:19000:0:99999:7:::' >"$T/scratch/etc/shadow"
    echo 'root:*::' >"$T/scratch/etc/gshadow"
    [ ! -f /etc/login.defs ] || cp /etc/login.defs "$T/scratch/etc/"
    while read -r cmd args; do
        if "$cmd" --prefix "$T/scratch" $args >"$T/useradd.out" 2>&1 && [ ! -s "$T/useradd.out" ]; then
            ok "RUN $cmd $args: works, silently"
        else
            bad "RUN $cmd $args: $(cat "$T/useradd.out")"
        fi
    done <"$T/users"
    grep -q '^qdq:x:10001:10001:' "$T/scratch/etc/passwd" && ok "user qdq is uid 10001, gid 10001" ||
        bad "no qdq:10001:10001 in the scratch passwd: $(cat "$T/scratch/etc/passwd")"
fi

# The installer steps as the Dockerfile runs them, with apt-get (and sudo) stubbed to fail:
# everything they want is already installed by CI's --dev.
mkdir "$T/stub"
for tool in apt-get sudo; do
    printf '#!/bin/sh\necho "would run: %s $*" >&2\nexit 1\n' "$tool" >"$T/stub/$tool"
    chmod +x "$T/stub/$tool"
done
for mode in "" --runtime; do
    if PATH=$T/stub:$PATH sh scripts/install-deps.sh $mode >"$T/inst" 2>&1; then
        ok "sh scripts/install-deps.sh $mode: nothing beyond what CI installs"
    else
        bad "sh scripts/install-deps.sh $mode wants more than --dev installed: $(cat "$T/inst")"
    fi
done

# The build context .dockerignore leaves: copied with docker's matching (patterns from the
# context root, * within a path element, ** across, ! to re-include, a matched directory takes
# its contents), then built with the Dockerfile's make target.
python3 - "$T/ctx" <<'PYEOF' >"$T/ctx.out" 2>&1
import os, re, shutil, sys
dest = sys.argv[1]
pats = []
for l in open(".dockerignore").read().splitlines():
    l = l.strip()
    if not l or l.startswith("#"):
        continue
    neg = l.startswith("!")
    p = os.path.normpath(l.lstrip("!").strip().strip("/"))
    rx, i = "", 0
    while i < len(p):
        if p.startswith("**/", i):
            rx += "(?:.*/)?"; i += 3
        elif p.startswith("**", i):
            rx += ".*"; i += 2
        elif p[i] == "*":
            rx += "[^/]*"; i += 1
        elif p[i] == "?":
            rx += "[^/]"; i += 1
        else:
            rx += re.escape(p[i]); i += 1
    pats.append((neg, re.compile(rx + r"\Z")))
def excluded(rel):
    parts = rel.split("/")
    prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    ex = False
    for neg, rx in pats:
        if any(rx.match(x) for x in prefixes):
            ex = not neg
    return ex
n = 0
for d, dirs, files in os.walk("."):
    for f in files:
        rel = os.path.relpath(os.path.join(d, f), ".")
        if excluded(rel):
            continue
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        shutil.copy2(rel, os.path.join(dest, rel), follow_symlinks=False)
        n += 1
print(n, "files")
PYEOF
if [ -f "$T/ctx/Makefile" ]; then
    ok "build context: $(cat "$T/ctx.out")"
    leaked=$(cd "$T/ctx" && ls -d .git build build-san build-fuzz 2>/dev/null; find . -name '*.o' | head -n 3)
    if [ -z "$leaked" ]; then ok "the context holds no .git or build output"; else bad "in the context: $leaked"; fi
    if [ -f "$T/ctx/scripts/install-deps.sh" ]; then ok "the context has scripts/install-deps.sh (COPY)"
    else bad "scripts/install-deps.sh is excluded from the context"; fi
    # A make of its own, not a part of the `make test` that may have started this script.
    if (cd "$T/ctx" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -j2 all OPT=-O0 >"$T/make.out" 2>&1) && [ -x "$T/ctx/build/qdq-server" ]; then
        ok "make all in the context builds qdq-server"
    else
        tail -n 20 "$T/make.out"
        bad "make all fails in the build context .dockerignore leaves"
    fi
else
    cat "$T/ctx.out"
    bad "the build context has no Makefile"
fi
finish
