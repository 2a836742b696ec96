#!/usr/bin/python3
"""The contract test: every logged HTTP exchange checked against docs/openapi.yaml.

    validate.py [--spec docs/openapi.yaml] LOG...

Each LOG holds one JSON object a line, written by the test clients when QDQ_CONTRACT_LOG is
set (tests/lib/http_client.c; tests/contract/py/sitecustomize.py for Python's requests):
src (the test program), method, url (path and query), status, headers ([name, value] pairs),
body_len, body_b64 (the body, or its first bytes), optionally body_decoded (the client undid
Content-Encoding) and error (the transfer was cut short).

For each exchange: the operation (its path, concrete paths before templated ones, and method;
a path not described gets the document's x-unmatched.path responses, a method not described
x-unmatched.method's), the response of its status (else the status is undocumented), the
headers (each required one present; each one the server wrote described, but for Date,
Content-Length, Content-Type, Connection, Transfer-Encoding and Keep-Alive; each value valid
against its schema), the Content-Type (exactly one of the response's media types, or none when
the response describes no content), and the body: JSON against the media type's schema, the
JSON header of a binary KServe answer against x-inference-header-schema, the header of a
safetensors answer against x-safetensors-header-schema. HEAD answers are checked without a body,
their Content-Type against the GET answer's. A body the log holds only in part is checked
no further than its status, headers and media type (counted and printed).

Prints one line per failure naming the exchange, then "N passed, N failed"; exit status 1 on
any failure, or when the logs hold no exchange at all. Needs Debian's python3-yaml and
python3-jsonschema.
"""
import argparse
import base64
import gzip
import json
import re
import sys
import zlib

import jsonschema
import yaml

# Headers of HTTP itself, not of the API: never described.
HTTP_HEADERS = {"date", "content-length", "content-type", "connection", "transfer-encoding",
                "keep-alive"}


class Spec:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        if not str(self.doc.get("openapi", "")).startswith("3.1"):
            raise SystemExit("%s: not OpenAPI 3.1" % path)
        self.resolver = jsonschema.RefResolver.from_schema(self.doc)
        self.validators = {}
        # Concrete paths first, then templated ones, as OpenAPI matches them.
        paths = sorted(self.doc.get("paths", {}).items(), key=lambda kv: "{" in kv[0])
        self.paths = []
        for template, item in paths:
            rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
            self.paths.append((re.compile(rx), template, self.deref(item)))
        um = self.doc.get("x-unmatched") or {}
        self.unmatched_path = self.deref(um.get("path") or {})
        self.unmatched_method = self.deref(um.get("method") or {})

    def deref(self, node):
        """node with its $ref (a local one, followed to the end) resolved."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/") or seen > 32:
                raise ValueError("unsupported $ref %r" % ref)
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            seen += 1
        return node

    def validate(self, schema, value):
        """The first error of value against schema (with $refs into the document), or None."""
        key = id(schema)
        v = self.validators.get(key)
        if v is None:
            v = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
            self.validators[key] = (v, schema)  # keeps schema alive: its id stays unique
        else:
            v = v[0]
        err = jsonschema.exceptions.best_match(v.iter_errors(value))
        return None if err is None else explain(err)

    def operation(self, method, path):
        """(label, responses) for a request."""
        for rx, template, item in self.paths:
            if rx.match(path):
                op = item.get(method.lower())
                if op is None:
                    return "%s %s (method not described)" % (method, template), \
                        self.unmatched_method, item
                return "%s %s" % (method, template), op.get("responses", {}), item
        return "%s %s (path not described)" % (method, path), self.unmatched_path, None


def explain(err, depth=0):
    """An error in a line: where in the value, and what. For a value that matches none of a
    oneOf/anyOf, the closest branch's errors (the one with fewest), named by its $ref."""
    where = "/".join(str(p) for p in err.absolute_path)
    at = "at /%s: " % where if where else ""
    if err.validator in ("oneOf", "anyOf") and err.context and depth < 4:
        branches = {}
        for e in err.context:
            branches.setdefault(e.schema_path[0], []).append(e)
        k, errs = min(branches.items(), key=lambda kv: len(kv[1]))
        sub = err.validator_value[k] if isinstance(err.validator_value, list) else {}
        name = sub.get("$ref", "#%s" % k).rsplit("/", 1)[-1] if isinstance(sub, dict) else k
        return "%smatches none of its %s; closest, %s: %s" % (
            at, err.validator, name, "; ".join(explain(e, depth + 1) for e in errs[:3]))
    return at + err.message[:200]


def header_ok(spec, schema, value):
    """Whether a header's text is valid for its schema, read as OpenAPI's simple style: the
    text, or the number or integer it spells when the schema asks for one."""
    candidates = [value]
    try:
        candidates.append(int(value))
    except ValueError:
        pass
    try:
        candidates.append(float(value))
    except ValueError:
        pass
    errors = [spec.validate(schema, c) for c in candidates]
    return None if None in errors else errors[0]


def json_load(data):
    # Python's json takes NaN, Infinity and -Infinity, which the server writes.
    return json.loads(data.decode("utf-8"))


class Checker:
    def __init__(self, spec):
        self.spec = spec
        self.passed = 0
        self.failed = 0
        self.partial = 0
        self.seen_ops = set()

    def check(self, ex):
        """A list of problems with one exchange (empty when it meets the description)."""
        spec = self.spec
        method = ex["method"].upper()
        path = ex["url"].split("?", 1)[0]
        label, responses, item = spec.operation(method, path)
        status = str(ex["status"])
        resp = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
        self.seen_ops.add((label, status))
        if resp is None:
            return ["status %s is not described for %s (described: %s)"
                    % (status, label, ", ".join(sorted(responses)) or "none")]
        resp = spec.deref(resp)
        problems = []
        got = {}
        for name, value in ex["headers"]:
            got.setdefault(name.lower(), []).append(value)
        described = {n.lower(): spec.deref(h) for n, h in (resp.get("headers") or {}).items()}
        for name, h in described.items():
            if h.get("required") and name not in got:
                problems.append("header %s is required but missing" % name)
        for name, values in got.items():
            if name in HTTP_HEADERS:
                continue
            h = described.get(name)
            if h is None:
                problems.append("header %s is not described for %s %s" % (name, label, status))
                continue
            if len(values) > 1:
                problems.append("header %s appears %d times" % (name, len(values)))
            schema = h.get("schema")
            for v in values:
                err = header_ok(spec, schema, v) if schema is not None else None
                if err:
                    problems.append("header %s: %r: %s" % (name, v[:80], err))

        # The media type: exactly one of the response's (for HEAD, of the GET answer's too).
        content = dict(resp.get("content") or {})
        if method == "HEAD" and item and "get" in item:
            get_resp = item["get"].get("responses", {}).get(status)
            if get_resp:
                content.update(spec.deref(get_resp).get("content") or {})
        ctype = (got.get("content-type") or [None])[0]
        body = base64.b64decode(ex.get("body_b64", ""))
        whole = len(body) == ex["body_len"] and not ex.get("error")
        media = None
        if ctype is None:
            if ex["body_len"] and content:
                problems.append("a %d-byte body without Content-Type (described: %s)"
                                % (ex["body_len"], ", ".join(content)))
        else:
            for key in content:
                if key.lower() == ctype.lower():
                    media = content[key]
            if media is None:
                problems.append("Content-Type %r is not described for %s %s (described: %s)"
                                % (ctype, label, status, ", ".join(content) or "no body"))
        if media is None or method == "HEAD":
            return problems

        # The body.
        enc = (got.get("content-encoding") or [""])[0].lower()
        schema = media.get("schema")
        if ctype.lower().startswith("application/json") and schema is not None:
            if not whole:
                self.partial += 1
                return problems
            try:
                if enc in ("gzip", "x-gzip") and not ex.get("body_decoded"):
                    body = gzip.decompress(body)
                elif enc == "deflate" and not ex.get("body_decoded"):
                    body = zlib.decompress(body)
                value = json_load(body)
            except (ValueError, OSError, zlib.error) as e:
                return problems + ["the body is not JSON: %s" % e]
            err = spec.validate(schema, value)
            if err:
                problems.append("body: %s" % err)
        head_schema = media.get("x-inference-header-schema")
        if head_schema is not None:
            n = int((got.get("inference-header-content-length") or ["-1"])[0])
            if 0 <= n <= len(body):
                try:
                    err = spec.validate(head_schema, json_load(body[:n]))
                except ValueError as e:
                    err = "not JSON: %s" % e
                if err:
                    problems.append("the binary answer's JSON header: %s" % err)
            elif n > 0:
                self.partial += 1
        st_schema = media.get("x-safetensors-header-schema")
        if st_schema is not None and len(body) >= 8:
            n = int.from_bytes(body[:8], "little")
            if 8 + n <= len(body):
                try:
                    err = spec.validate(st_schema, json_load(body[8:8 + n]))
                except ValueError as e:
                    err = "not JSON: %s" % e
                if err:
                    problems.append("the safetensors header: %s" % err)
            else:
                self.partial += 1
        return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default="docs/openapi.yaml")
    ap.add_argument("--coverage", action="store_true",
                    help="also list the described operations and statuses no exchange reached")
    ap.add_argument("--show", type=int, default=50, help="failures printed at most")
    ap.add_argument("logs", nargs="+")
    a = ap.parse_args()
    spec = Spec(a.spec)
    c = Checker(spec)
    shown = 0
    for log in a.logs:
        try:
            f = open(log, encoding="utf-8", errors="surrogateescape")
        except OSError as e:
            print("FAIL: %s" % e)
            c.failed += 1
            continue
        with f:
            for lineno, line in enumerate(f, 1):
                try:
                    ex = json.loads(line)
                    problems = c.check(ex)
                except (ValueError, KeyError, TypeError) as e:
                    problems, ex = ["unreadable log line: %s" % e], {}
                if problems:
                    c.failed += 1
                    if shown < a.show:
                        print("FAIL: %s:%d: %s: %s %s -> %s: %s"
                              % (log, lineno, ex.get("src", "?"), ex.get("method", "?"),
                                 ex.get("url", "?")[:120], ex.get("status", "?"),
                                 "; ".join(problems)))
                    shown += 1
                else:
                    c.passed += 1
    if shown > a.show:
        print("(%d more failures not shown)" % (shown - a.show))
    if c.passed + c.failed == 0:
        print("FAIL: no exchange in %s (was QDQ_CONTRACT_LOG set?)" % " ".join(a.logs))
        c.failed = 1
    ops = {}
    for path, item in spec.doc.get("paths", {}).items():
        for m, op in item.items():
            if m in ("get", "head", "post", "put", "delete", "patch", "options"):
                for st in op.get("responses", {}):
                    ops["%s %s" % (m.upper(), path), st] = True
    reached = sum(1 for k in ops if k in c.seen_ops)
    print("exchanges: %d; described (operation, status) pairs reached: %d of %d; bodies logged "
          "in part (status, headers and media type checked): %d"
          % (c.passed + c.failed, reached, len(ops), c.partial))
    if a.coverage:
        for k in sorted(ops):
            if k not in c.seen_ops:
                print("  not reached: %s %s" % k)
    print("%d passed, %d failed" % (c.passed, c.failed))
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
