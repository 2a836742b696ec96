#!/bin/sh
# Offline checks of deploy/k8s/ (no cluster here, nor in CI):
#  - yamllint (Debian's yamllint), relaxed rules with 100-column lines, warnings fail;
#  - schema: no Debian package ships kubeconform or kubeval, and `kubectl apply --dry-run=client`
#    needs an API server for discovery, so each manifest is read into the typed models of the
#    Kubernetes Python client (Debian's python3-kubernetes) and written back: a field the schema
#    does not know is dropped and a value of the wrong type changes, so any difference is an
#    error; a missing required field fails on reading. (The client is 22.x: the HPA's
#    autoscaling/v2 is read with the v2beta2 models, whose schema v2 kept.) When a kubectl that
#    can dry-run without a server is on PATH, that runs too;
#  - the deployment contract: readiness over gRPC (grpc.health.v1 on the grpc port 8081;
#    python3-kubernetes 22 predates the probe's grpc field, so that field is checked here by
#    hand) and liveness on /healthz at the named http port, non-root (the
#    Dockerfile's uid), read-only root filesystem, requests and limits, the shutdown timing
#    (preStop sleep >= 5 s, < terminationGracePeriodSeconds, and grace >= preStop +
#    QDQ_DRAIN_TIMEOUT + 5; QDQ_REQUEST_TIMEOUT <= QDQ_DRAIN_TIMEOUT), QDQ_WORKERS within the
#    CPU limit, Service/HPA/PDB selectors and targets matching the Deployment;
#  - memory follows the server's budget (its --help defaults and SIZE rules): the budget
#    (QDQ_MAX_MEMORY, else 3/4 of the limit) plus what it does not count (connection memory,
#    64 MiB of stacks and program) within the limit, and at least a largest body; the memory
#    request at least the idle footprint (measured below) plus a largest body; the spool
#    (QDQ_SPOOL_DIR, else the Dockerfile's) on a writable volume that is not tmpfs, its emptyDir
#    sizeLimit at least QDQ_MAX_CHECKPOINT_INFLIGHT x QDQ_MAX_CHECKPOINT_BYTES + 1/16, the
#    ephemeral-storage request covering it; the same budget and spool rules for
#    deploy/docker-compose.yml;
#  - the server started with the Deployment's QDQ_* variables answers its probes (the gRPC one
#    with Debian's python3-grpcio: SERVING), its idle RSS is measured, and it drains on SIGTERM
#    with exit 0.
# Prints "N passed, N failed, N skipped" last.
set -u
cd "$(dirname "$0")/../.." || exit 1
SERVER=${QDQ_SERVER:-build/qdq-server}
. tests/lib/checks.sh
T=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

if command -v yamllint >/dev/null; then
    if yamllint --strict -d '{extends: relaxed, rules: {line-length: {max: 100}}}' \
        deploy/k8s/*.yaml deploy/docker-compose.yml >"$T/lint" 2>&1; then
        ok "yamllint deploy/k8s/*.yaml deploy/docker-compose.yml"
    else
        cat "$T/lint"
        bad "yamllint"
    fi
else
    bad "yamllint is not installed (Debian package yamllint, in scripts/install-deps.sh --dev)"
fi

# Debian's python3 carries python3-kubernetes; a python3 earlier on PATH (pyenv, venv) may not.
if ! PY=$(python_with kubernetes yaml); then
    bad "python3 with the kubernetes module is missing (Debian package python3-kubernetes)"
    finish
fi

# The QDQ_* variables the server knows, for the env check.
"$SERVER" --help >"$T/help" 2>/dev/null
grep -o 'QDQ_[A-Z_]*' "$T/help" | sort -u >"$T/vars"
[ -s "$T/vars" ] || bad "no QDQ_* variables from $SERVER --help"

"$PY" - "$T/vars" "$T/env" "$T/help" "$T/mem" >"$T/py.out" 2>&1 <<'PYEOF'
import re, sys, yaml
from kubernetes.client import ApiClient

known_vars = set(open(sys.argv[1]).read().split())
results = []
def check(cond, what):
    results.append((bool(cond), what))

def load(name):
    with open("deploy/k8s/" + name) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    check(len(docs) == 1, f"{name}: one document")
    return docs[0]

api = ApiClient()
def diff(a, b, path=""):
    """Paths where the round trip b differs from the manifest a."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in a:
            if k not in b:
                out.append(f"{path}.{k}: not in the schema")
            else:
                out += diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}[{i}]")]
    if a != b or type(a) != type(b):
        return [f"{path}: {a!r} read as {b!r} (wrong type)"]
    return []

# Fields newer than the client's schema, checked by hand: a probe's grpc (Kubernetes 1.24,
# GRPCAction: port, an integer, required; service, a string).
NEWER = re.compile(r"^\.spec\.template\.spec\.containers\[\d+\]\.(readiness|liveness|startup)Probe"
                   r"\.grpc: not in the schema$")

def grpc_action_ok(g):
    return (isinstance(g, dict) and set(g) <= {"port", "service"} and
            isinstance(g.get("port"), int) and 1 <= g["port"] <= 65535 and
            isinstance(g.get("service", ""), str))

def schema(name, doc, api_version, kind, model):
    check(doc.get("apiVersion") == api_version and doc.get("kind") == kind,
          f"{name}: {api_version} {kind}")
    try:
        obj = api._ApiClient__deserialize(doc, model)
    except Exception as e:
        check(False, f"{name}: schema ({model}): {e}")
        return
    d = [x for x in diff(doc, api.sanitize_for_serialization(obj)) if not NEWER.match(x)]
    check(not d, f"{name}: every field known to the {model} schema, of its type"
          + ("".join("\n    " + x for x in d)))

dep, svc, hpa, pdb = (load(n) for n in ("deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml"))
schema("deployment.yaml", dep, "apps/v1", "Deployment", "V1Deployment")
schema("service.yaml", svc, "v1", "Service", "V1Service")
schema("hpa.yaml", hpa, "autoscaling/v2", "HorizontalPodAutoscaler", "V2beta2HorizontalPodAutoscaler")
schema("pdb.yaml", pdb, "policy/v1", "PodDisruptionBudget", "V1PodDisruptionBudget")

def qty(v):
    """A CPU count or a byte count from a Kubernetes quantity."""
    m = re.fullmatch(r"([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(v))
    if not m:
        return None
    mult = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[m.group(2)]
    return float(m.group(1)) * mult

dockerfile = open("Dockerfile").read()
m = re.search(r"^USER (\d+)", dockerfile, re.M)
image_uid = int(m.group(1)) if m else None

labels = dep["metadata"].get("labels", {})
tmpl = dep["spec"]["template"]
tlabels = tmpl["metadata"].get("labels", {})
sel = dep["spec"]["selector"].get("matchLabels", {})
check(sel and all(tlabels.get(k) == v for k, v in sel.items()),
      "Deployment: selector matches the pod template's labels")
pod = tmpl["spec"]
cs = pod["containers"]
check(len(cs) == 1, "Deployment: one container")
c = cs[0]
ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
check(ports.get("http") == 8080, "container port http = 8080 (the image's EXPOSE and QDQ_LISTEN)")
check(ports.get("grpc") == 8081,
      "container port grpc = 8081 (the image's EXPOSE and QDQ_GRPC_LISTEN)")

def probe(kind, path):
    p = c.get(kind) or {}
    g = p.get("httpGet") or {}
    check(g.get("path") == path and g.get("port") in ("http", 8080),
          f"{kind}: GET {path} on the http port")
    return p
ready = c.get("readinessProbe") or {}
check(grpc_action_ok(ready.get("grpc")) and ready["grpc"]["port"] == 8081 and
      ready["grpc"].get("service", "") in ("", "inference.GRPCInferenceService"),
      f"readinessProbe: grpc.health.v1 on port 8081 (a number: {ready.get('grpc')})")
probe("livenessProbe", "/healthz")

psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
check(csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, "runAsNonRoot")
uid = csc.get("runAsUser", psc.get("runAsUser"))
check(uid not in (None, 0) and uid == image_uid, f"runAsUser {uid} = the Dockerfile's USER {image_uid}")
check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
check("ALL" in (csc.get("capabilities") or {}).get("drop", []), "capabilities: drop ALL")

res = c.get("resources", {})
rq, lm = res.get("requests", {}), res.get("limits", {})
for r in ("cpu", "memory"):
    a, b = qty(rq.get(r)), qty(lm.get(r))
    check(a and b and a <= b, f"resources: {r} request {rq.get(r)} <= limit {lm.get(r)}")

env = {e["name"]: e.get("value") for e in c.get("env", [])}
unknown = [k for k in env if k not in known_vars]
check(not unknown, f"env: only the server's QDQ_* variables (unknown: {unknown})")
check(env.get("QDQ_LISTEN", "0.0.0.0:8080") == "0.0.0.0:8080", "QDQ_LISTEN left to the image (0.0.0.0:8080)")
w = int(env.get("QDQ_WORKERS", "0"))
check(1 <= w <= (qty(lm.get("cpu")) or 0), f"QDQ_WORKERS={w} set, within the CPU limit {lm.get('cpu')}")
check("QDQ_HTTP_THREADS" in env, "QDQ_HTTP_THREADS set (as the default would: the CPU limit)")

grace = pod.get("terminationGracePeriodSeconds", 30)
pre = (c.get("lifecycle") or {}).get("preStop") or {}
sleep = None
if "sleep" in pre:
    sleep = pre["sleep"].get("seconds")
elif "exec" in pre:
    cmd = pre["exec"].get("command", [])
    if len(cmd) == 2 and cmd[0].endswith("sleep"):
        sleep = int(cmd[1])
drain = int(env.get("QDQ_DRAIN_TIMEOUT", "30"))
req_to = int(env.get("QDQ_REQUEST_TIMEOUT", "60"))
check(sleep is not None and sleep >= 5, f"preStop sleeps >= 5 s for endpoint removal to spread ({sleep})")
check(sleep is not None and sleep < grace, f"preStop sleep {sleep} < terminationGracePeriodSeconds {grace}")
check(sleep is not None and grace >= sleep + drain + 5,
      f"grace {grace} >= preStop {sleep} + QDQ_DRAIN_TIMEOUT {drain} + 5")
check(req_to <= drain, f"QDQ_REQUEST_TIMEOUT {req_to} <= QDQ_DRAIN_TIMEOUT {drain}")
ru = (dep["spec"].get("strategy") or {}).get("rollingUpdate") or {}
check(ru.get("maxUnavailable") == 0, "rolling update keeps every replica until its successor is ready")

check(svc["spec"].get("selector") == sel, "Service selector = the Deployment's selector")
sp = svc["spec"]["ports"]
spn = {p.get("name"): p for p in sp}
check(len(sp) == 2 and spn.get("http", {}).get("targetPort") in ("http", 8080) and
      spn["http"].get("port") == 8080, "Service port 8080 -> the container's http port")
check(spn.get("grpc", {}).get("targetPort") in ("grpc", 8081) and spn["grpc"].get("port") == 8081,
      "Service port 8081 -> the container's grpc port")

ref = hpa["spec"]["scaleTargetRef"]
check(ref.get("kind") == "Deployment" and ref.get("name") == dep["metadata"]["name"]
      and ref.get("apiVersion") == "apps/v1", "HPA targets the Deployment")
lo, hi = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
check(2 <= lo <= hi, f"HPA {lo}..{hi} replicas (at least 2, so one can be down)")
check(dep["spec"].get("replicas", 1) == lo, "Deployment replicas = HPA minReplicas")
cpu_metric = [m for m in hpa["spec"].get("metrics", [])
              if m.get("type") == "Resource" and m["resource"]["name"] == "cpu"]
check(cpu_metric and rq.get("cpu"), "HPA on CPU utilization, which needs a CPU request")

psel = pdb["spec"]["selector"].get("matchLabels", {})
check(psel == sel, "PDB selector = the Deployment's selector")
mu, ma = pdb["spec"].get("maxUnavailable"), pdb["spec"].get("minAvailable")
check((mu is not None and 1 <= int(mu) < lo) or (ma is not None and int(ma) < lo),
      f"PDB lets drains proceed one at a time (maxUnavailable {mu}, minAvailable {ma})")

# ---- Memory and the spool follow the server's budget (the server's own figures: the defaults
# its --help prints, SIZE values read as it reads them).
help_text = open(sys.argv[3]).read()
def server_default(var):
    """The default --help gives for the option whose variable is var (text)."""
    m = re.search(re.escape(var) + r"\n(.*?)(?=\n  --|\n\n|\Z)", help_text, re.S)
    d = re.search(r"Default: (\S+?)\.?(?:\s|$)", " ".join(m.group(1).split())) if m else None
    return d.group(1) if d else None

def size(text):
    """A SIZE as the server reads it: bytes with an optional 1024-based K, M or G."""
    m = re.fullmatch(r"(\d+)([KMG]?)", str(text).strip())
    return int(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)] if m else None

def setting(var, parse=size):
    v = env.get(var, server_default(var))
    return parse(v) if v is not None else None

MiB = 2**20
mem_limit = qty(lm.get("memory"))
max_body = setting("QDQ_MAX_BODY_BYTES")
conns = setting("QDQ_MAX_CONNECTIONS", int)
hdr = setting("QDQ_MAX_HEADER_BYTES")
check(mem_limit and max_body and conns and hdr,
      f"the memory figures: limit {lm.get('memory')}, max body {max_body}, connections {conns} x "
      f"{hdr} bytes (the server's --help defaults, or the Deployment's QDQ_* values)")
mem_limit = int(mem_limit or 0)
# The budget: QDQ_MAX_MEMORY, else three quarters of the container's limit, whole MiB (--help:
# "three quarters of the container's memory limit").
budget = size(env["QDQ_MAX_MEMORY"]) if "QDQ_MAX_MEMORY" in env else mem_limit // 4 * 3 // MiB * MiB
why = "QDQ_MAX_MEMORY" if "QDQ_MAX_MEMORY" in env else "3/4 of the limit"
outside = (conns or 0) * (hdr or 0) + 64 * MiB
check(budget and budget + outside <= mem_limit,
      f"the memory budget ({why}: {budget // MiB} MiB) + what it does not count (connections "
      f"{conns} x {hdr} bytes + 64 MiB of stacks, program, fragmentation) <= the memory limit "
      f"{lm.get('memory')} ({mem_limit // MiB} MiB)")
check(budget and max_body and budget >= max_body,
      f"the budget ({budget // MiB} MiB) admits a largest request (QDQ_MAX_BODY_BYTES "
      f"{(max_body or 0) // MiB} MiB); a body larger than the budget is refused")
req_mem = qty(rq.get("memory"))

# The spool: QDQ_SPOOL_DIR (the Deployment's, else the image's ENV) on a writable volume of the
# node's disk (not an emptyDir of medium Memory, which is tmpfs: memory, counted against the
# limit), whose sizeLimit holds what the server may write there: QDQ_MAX_CHECKPOINT_INFLIGHT
# answers of up to QDQ_MAX_CHECKPOINT_BYTES, plus 1/16 (headers, ranges tensors). The kubelet
# evicts a pod whose emptyDir outgrows its sizeLimit, and the server sees only the disk's free
# space.
m = re.search(r"^ENV .*\bQDQ_SPOOL_DIR=(\S+)", dockerfile, re.M)
spool = env.get("QDQ_SPOOL_DIR") or (m.group(1) if m else "/tmp")
mounts = [vm for vm in c.get("volumeMounts", [])
          if spool == vm.get("mountPath", "").rstrip("/") or
          spool.startswith(vm.get("mountPath", "").rstrip("/") + "/")]
vols = {v.get("name"): v for v in pod.get("volumes", [])}
vol = vols.get(mounts[-1]["name"]) if mounts else None
check(vol is not None and not mounts[-1].get("readOnly"),
      f"the spool {spool} (QDQ_SPOOL_DIR) is on a writable volume: the root filesystem is "
      f"read-only ({[vm.get('mountPath') for vm in mounts]})")
ed = (vol or {}).get("emptyDir")
check(vol is not None and (ed is None or ed.get("medium", "") != "Memory"),
      f"the spool's volume is disk, not tmpfs (medium Memory counts against the memory limit): {vol}")
ck_bytes = setting("QDQ_MAX_CHECKPOINT_BYTES")
ck_inflight = setting("QDQ_MAX_CHECKPOINT_INFLIGHT", int)
need = (ck_bytes or 0) * (ck_inflight or 0) * 17 // 16
limit = qty(ed.get("sizeLimit")) if ed and ed.get("sizeLimit") is not None else None
check(ed is None or (limit and need and limit >= need),
      f"the spool's emptyDir sizeLimit {ed and ed.get('sizeLimit')} >= QDQ_MAX_CHECKPOINT_INFLIGHT "
      f"{ck_inflight} x QDQ_MAX_CHECKPOINT_BYTES {(ck_bytes or 0) // MiB} MiB + 1/16 "
      f"({need / 2**30:.2f} GiB)")
eph = qty(rq.get("ephemeral-storage"))
check(ed is None or (eph and limit and eph >= limit),
      f"requests.ephemeral-storage {rq.get('ephemeral-storage')} covers the spool's sizeLimit, so "
      f"the scheduler places the pod where its spool fits")

# The same rules for deploy/docker-compose.yml's qdq service: its memory limit (Compose's
# units, 1024-based) and budget, and the spool on a volume (not a tmpfs) when the root is
# read-only.
with open("deploy/docker-compose.yml") as f:
    q = yaml.safe_load(f)["services"]["qdq"]
cenv = q.get("environment") or {}
if isinstance(cenv, list):
    cenv = dict(e.split("=", 1) for e in cenv if "=" in e)
cenv = {k: str(v) for k, v in cenv.items()}
m = re.fullmatch(r"(\d+)([bkmg]?)", str(((q.get("deploy") or {}).get("resources") or {})
                                       .get("limits", {}).get("memory", "")).lower())
climit = int(m.group(1)) * {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}[m.group(2)] if m else 0
cbudget = size(cenv["QDQ_MAX_MEMORY"]) if "QDQ_MAX_MEMORY" in cenv else climit // 4 * 3 // MiB * MiB
cbody = size(cenv.get("QDQ_MAX_BODY_BYTES", server_default("QDQ_MAX_BODY_BYTES")))
couts = (int(cenv.get("QDQ_MAX_CONNECTIONS", server_default("QDQ_MAX_CONNECTIONS"))) *
         size(cenv.get("QDQ_MAX_HEADER_BYTES", server_default("QDQ_MAX_HEADER_BYTES"))) + 64 * MiB)
check(climit and cbudget and cbody and cbody <= cbudget and cbudget + couts <= climit,
      f"docker-compose.yml: a memory limit ({climit // MiB} MiB) that holds the budget "
      f"({'QDQ_MAX_MEMORY' if 'QDQ_MAX_MEMORY' in cenv else '3/4 of it'}: {cbudget // MiB} MiB) "
      f"+ {couts // MiB} MiB it does not count, the budget a largest request ({cbody // MiB} MiB)")
cspool = cenv.get("QDQ_SPOOL_DIR") or spool
def target(v):
    if isinstance(v, dict):
        return v.get("type", "volume"), v.get("target", "")
    parts = str(v).split(":")
    return ("volume" if len(parts) == 1 or not parts[0].startswith((".", "/", "~")) else "bind",
            parts[1] if len(parts) > 1 else parts[0])
under = lambda t: cspool == t.rstrip("/") or cspool.startswith(t.rstrip("/") + "/")
cvols = [target(v) for v in q.get("volumes") or []]
tmpfs = q.get("tmpfs") or []
tmpfs = [tmpfs] if isinstance(tmpfs, str) else tmpfs
on = [t for t in cvols if under(t[1])] + [("tmpfs", t.split(":")[0]) for t in tmpfs if under(t.split(":")[0])]
check(not q.get("read_only") or (on and max(on, key=lambda t: len(t[1]))[0] in ("volume", "bind")),
      f"docker-compose.yml: the read-only replicas' spool {cspool} is on a volume, not a tmpfs: {on}")

with open(sys.argv[2], "w") as f:
    for k, v in env.items():
        f.write(f"{k}={v}\n")
with open(sys.argv[4], "w") as f:
    f.write(f"{int(req_mem or 0)} {max_body or 0}\n")
for good, what in results:
    print(("ok: " if good else "FAIL: ") + what)
PYEOF
cat "$T/py.out"
pass=$((pass + $(grep -c '^ok: ' "$T/py.out")))
fail=$((fail + $(grep -c '^FAIL: ' "$T/py.out")))
grep -q '^\(ok\|FAIL\): ' "$T/py.out" || bad "the manifest checks did not run"

# A kubectl that can dry-run offline (none of Debian's can: they need the API server's
# discovery). Counted as skipped, with the reason, when it cannot (no machine of ours has a
# cluster; the checks above and below do not need one).
if ! command -v kubectl >/dev/null; then
    skip "kubectl apply --dry-run=client: kubectl is not installed (and would need a cluster's API server)"
else
    printf 'apiVersion: v1\nkind: Config\nclusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]\ncontexts: [{name: none, context: {cluster: none}}]\ncurrent-context: none\n' >"$T/kubeconfig"
    if KUBECONFIG=$T/kubeconfig timeout 20 kubectl apply --dry-run=client --validate=false \
        -f deploy/k8s -o name </dev/null >"$T/kubectl.out" 2>&1; then
        ok "kubectl apply --dry-run=client: $(tr '\n' ' ' <"$T/kubectl.out")"
    else
        skip "kubectl apply --dry-run=client needs a cluster's API server: $(head -c 200 "$T/kubectl.out" | tr '\n' ' ')"
    fi
fi

# The server with the Deployment's variables (on 127.0.0.1 and a free port instead of the
# image's 0.0.0.0:8080): they parse, the probe paths answer, SIGTERM drains and exits 0.
if [ -x "$SERVER" ] && [ -s "$T/env" ]; then
    : >"$T/err"
    # shellcheck disable=SC2046
    env $(cat "$T/env") QDQ_LISTEN=127.0.0.1:0 QDQ_GRPC_LISTEN=127.0.0.1:0 QDQ_ACCESS_LOG=off \
        "$SERVER" >"$T/out" 2>"$T/err" &
    PID=$!
    server_ports "$T/err" $PID
    P=$HPORT
    if [ -n "$P" ]; then
        ok "the server starts with the Deployment's variables: $(tr '\n' ' ' <"$T/env")"
        for path in /readyz /healthz; do
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "http://127.0.0.1:$P$path")
            if [ "$code" = 200 ]; then ok "probe GET $path: 200"; else bad "probe GET $path: $code"; fi
        done
        # The gRPC readiness probe: grpc.health.v1.Health/Check with an empty request; the
        # answer's bytes are field 1 (status) = 1 (SERVING).
        server_ports "$T/err" $PID grpc
        G=$GPORT
        st=$("$PY" - "$G" 2>&1 <<'GRPCEOF'
import sys, grpc
ch = grpc.insecure_channel("127.0.0.1:" + sys.argv[1])
print(ch.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5).hex())
GRPCEOF
)
        if [ "$st" = 0801 ]; then ok "probe grpc.health.v1 Check: SERVING"; else bad "probe grpc.health.v1 Check: ${st:-no answer} (port ${G:-none})"; fi
        # The memory request holds one largest request from idle: the idle footprint measured
        # here (VmRSS, the gRPC threads started and both probes answered) plus
        # QDQ_MAX_BODY_BYTES, the body a binary request is answered in place.
        rss=$(awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$PID/status")
        read -r req body <"$T/mem"
        if [ -n "$rss" ] && [ "$req" -ge $((rss + body)) ]; then
            ok "requests.memory $((req / 1048576)) MiB >= the idle footprint $((rss / 1048576)) MiB + a largest body $((body / 1048576)) MiB"
        else
            bad "requests.memory $((req / 1048576)) MiB < the idle footprint $((${rss:-0} / 1048576)) MiB (measured) + a largest body $((body / 1048576)) MiB"
        fi
        kill -TERM $PID
        wait $PID
        rc=$?
        PID=
        if [ $rc -eq 0 ]; then ok "SIGTERM: exit 0"; else bad "SIGTERM: exit $rc"; fi
    else
        bad "the server did not start with the Deployment's variables: $(cat "$T/err")"
    fi
else
    bad "no server binary at $SERVER"
fi
finish
