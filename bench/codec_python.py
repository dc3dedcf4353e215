#!/usr/bin/env python3
"""Reference figures for `croupier bench codec`: Python protobuf's upb
(C) implementation timing the same encodings the Swift benchmark uses.

  codec_python.py DIR SECONDS   reads DIR/{small,large}.bin, prints one JSON line
"""
import json
import os
import sys
import time

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal import api_implementation
from grpc_tools import protoc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def message_class(workdir, name):
    out = os.path.join(workdir, "bench.pb")
    if protoc.main(["protoc", "-I" + os.path.join(ROOT, "protos"), "--include_imports",
                    "--descriptor_set_out=" + out, "grpc/testing/messages.proto"]) != 0:
        sys.exit("protoc failed")
    pool = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(open(out, "rb").read()).file:
        pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def rate(fn, seconds):
    """Best of 3 runs of at least `seconds` each, in operations per second."""
    best = 0.0
    for _ in range(3):
        n, batch, start = 0, 16, time.perf_counter()
        while True:
            for _ in range(batch):
                fn()
            n += batch
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
            batch = min(batch * 2, 1 << 16)
        best = max(best, n / elapsed)
    return best


def main():
    workdir, seconds = sys.argv[1], float(sys.argv[2])
    results = {"implementation": api_implementation.Type()}
    for label, type_name in (("small", "grpc.testing.SimpleRequest"), ("large", "grpc.testing.SimpleResponse")):
        cls = message_class(workdir, type_name)
        data = open(os.path.join(workdir, label + ".bin"), "rb").read()
        msg = cls.FromString(data)
        assert msg.SerializeToString() == data, "Python does not reproduce the Swift encoding"
        results[label] = {
            "bytes": len(data),
            "decode_per_s": rate(lambda: cls.FromString(data), seconds),
            "encode_per_s": rate(msg.SerializeToString, seconds),
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
