"""The contract log for Python tests: with QDQ_CONTRACT_LOG=FILE set and this directory on
PYTHONPATH (tests/run.sh does it for tests/checkpoint), every answer a `requests` call gets is
appended to FILE as one JSON line, as tests/lib/http_client.c logs the C tests' exchanges, for
tests/contract/validate.py. Without the variable it does nothing.

requests has already undone any Content-Encoding of the body (body_decoded says so). A
response read as a stream (stream=True) is logged without its body.
"""
import os

_LOG = os.environ.get("QDQ_CONTRACT_LOG")
_JSON_MAX = 1 << 20
_HEAD = 256


def _install():
    try:
        import requests
    except ImportError:
        return
    import base64
    import json
    import sys
    import threading

    lock = threading.Lock()
    send = requests.Session.send
    src = os.path.basename(sys.argv[0]) if sys.argv[0] not in ("", "-", "-c") else "python"

    def logged_send(self, request, **kw):
        r = send(self, request, **kw)
        try:
            log(request, r, kw.get("stream", False))
        except Exception:  # logging must never change a test's outcome
            pass
        return r

    def log(request, r, stream):
        headers = [[k, v] for k, v in r.raw.headers.items()] if r.raw is not None \
            else [[k, v] for k, v in r.headers.items()]
        body = b"" if stream else (r.content or b"")
        ctype = r.headers.get("Content-Type", "")
        keep = _HEAD
        if ctype.lower().startswith("application/json"):
            keep = len(body)
        elif "Inference-Header-Content-Length" in r.headers:
            keep = int(r.headers["Inference-Header-Content-Length"])
        elif ctype.lower() == "application/x-safetensors" and len(body) >= 8:
            keep = 8 + int.from_bytes(body[:8], "little")
        keep = min(keep, len(body), _JSON_MAX)
        rec = {"src": src, "method": request.method, "url": request.path_url,
               "status": r.status_code, "headers": headers, "body_len": len(body),
               "body_b64": base64.b64encode(body[:keep]).decode("ascii"),
               "body_decoded": True}
        if request.headers.get("Content-Type"):
            rec["req_content_type"] = request.headers["Content-Type"]
        if stream:
            rec["error"] = "streamed: body not logged"
        line = (json.dumps(rec) + "\n").encode("utf-8", "surrogateescape")
        with lock:
            fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    requests.Session.send = logged_send


if _LOG:
    _install()
