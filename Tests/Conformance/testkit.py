"""Shared helpers of the Python conformance clients: stub generation from
the repository's .proto files, HS256 tokens, and error expectations."""
import base64
import hashlib
import hmac
import json
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def compile_stubs(package, files, rewrite=lambda text: text):
    """Generates Python modules for `files` ((path under protos/, module name)
    pairs) as package `package`. The .proto files are copied under that
    package name first: generated modules are named after the file path, and
    e.g. `grpc/testing` would clash with grpcio's own `grpc` package. Proto
    packages (and so service and method names) are unchanged."""
    out = tempfile.mkdtemp(prefix="croupier_%s_" % package)
    src = os.path.join(out, "src", package)
    os.makedirs(src)
    names = []
    for rel, name in files:
        with open(os.path.join(ROOT, "protos", rel)) as f:
            text = rewrite(f.read())
        with open(os.path.join(src, name + ".proto"), "w") as f:
            f.write(text)
        names.append("%s/%s.proto" % (package, name))
    args = ["protoc", "-I" + os.path.join(out, "src"), "--python_out=" + out, "--grpc_python_out=" + out] + names
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    sys.path.insert(0, out)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret, claims, alg="HS256", sign=True):
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing_input = (header + "." + payload).encode()
    if not sign:
        return header + "." + payload + "."
    digest = hashlib.sha512 if alg == "HS512" else hashlib.sha256
    return header + "." + payload + "." + b64url(hmac.new(secret, signing_input, digest).digest())


def expect_error(fn, code, contains=None):
    try:
        fn()
    except grpc.RpcError as e:
        assert e.code() == code, "expected %s, got %s: %s" % (code, e.code(), e.details())
        if contains:
            assert contains in (e.details() or ""), "expected %r in %r" % (contains, e.details())
        return e
    raise AssertionError("expected %s, the call succeeded" % code)


def run_checks(label, make_checks, names, after=lambda checks: None):
    """The command line of a check script: `SCRIPT HOST:PORT --jwt-secret SECRET`.
    Runs each named check of `make_checks(target, secret)` in order, prints
    PASS/FAIL per check and a summary line, and exits 1 if any failed."""
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("--jwt-secret", required=True)
    args = parser.parse_args()
    checks = make_checks(args.target, args.jwt_secret.encode())
    failed = 0
    for name in names:
        try:
            getattr(checks, name)()
            print("PASS", name)
        except Exception as e:  # noqa: BLE001 - report every failure, keep going
            failed += 1
            print("FAIL", name, "-", repr(e))
    after(checks)
    print("%d passed, %d failed (%s)" % (len(names) - failed, failed, label))
    sys.exit(1 if failed else 0)
