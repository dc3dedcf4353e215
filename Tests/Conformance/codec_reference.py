#!/usr/bin/env python3
"""Reference side of the codec conformance test: Python protobuf (upb).

  codec_reference.py emit DIR     write reference encodings into DIR
  codec_reference.py verify DIR   check the encodings Swift wrote into DIR

Schemas come from a descriptor set compiled by grpc_tools' protoc, loaded
into a descriptor pool at run time: no generated Python code, so nothing
here depends on the Swift side or on matching protoc/runtime versions.

Two Python implementations take part. `emit` uses the pure-Python one,
whose deterministic mode sorts map keys canonically (ascending, strings by
code point), the order Swift writes. upb's deterministic order is an
artifact of its back-to-front encoder ("ab" before "a"; int64 keys in
unsigned order), so it cannot serve for byte comparison. `verify` uses the
default (upb, C) implementation to decode what Swift wrote.
"""
import os
import random
import struct
import sys

if len(sys.argv) > 1 and sys.argv[1] == "emit":
    os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory  # noqa: E402
from google.protobuf.internal import api_implementation  # noqa: E402
from grpc_tools import protoc  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RANDOM_CASES = 300
GRPC_TYPES = [
    "grpc.testing.SimpleRequest",
    "grpc.testing.SimpleResponse",
    "grpc.testing.StreamingOutputCallRequest",
    "grpc.testing.StreamingInputCallRequest",
    "grpc.testing.TestOrcaReport",
    "grpc.health.v1.HealthListResponse",
    "grpc.reflection.v1.ServerReflectionRequest",
    "grpc.reflection.v1.ServerReflectionResponse",
]

# The values Swift's CodecConformanceTests.expectedKitchenSink() also spells out.
EXPECTED = {
    "fDouble": -1.5e300, "fFloat": 3.25, "fInt64": "-9223372036854775808",
    "fUint64": "18446744073709551615", "fInt32": -42, "fFixed64": "1234567890123",
    "fFixed32": 4294967295, "fBool": True, "fString": "héllo, 世界 🎲",
    "fBytes": "AAH+/w==", "fUint32": 4000000000, "fSfixed32": -2147483648,
    "fSfixed64": "-77", "fSint32": -1, "fSint64": "-4611686018427387904",
    "fEnum": "COLOR_BLUE", "fMessage": {"id": 7, "label": "inner", "children": [{"id": 8}]},
    "rDouble": [0.5, -0.0, 1e-300], "rFloat": [1.5, -2.0], "rInt64": ["-1", "0", "1"],
    "rUint64": ["0", "300"], "rInt32": [-1, 2, 150], "rFixed64": ["1", "2"], "rFixed32": [3],
    "rBool": [True, False, True], "rString": ["a", "", "ü"], "rBytes": ["", "AQI="],
    "rUint32": [1, 4294967295], "rSfixed32": [-5], "rSfixed64": ["-6"], "rSint32": [-7, 7],
    "rSint64": ["-8"], "rEnum": ["COLOR_RED", "COLOR_BLUE", 9], "rMessage": [{"id": 1}, {}],
    "rUnpackedInt32": [5, -5],
    "oInt32": 0, "oString": "", "oEnum": "COLOR_UNSPECIFIED",
    "mStringInt32": {"b": 2, "a": 1, "": 0}, "mInt64String": {"-3": "minus three", "10": "ten"},
    "mBoolBytes": {"true": "/w==", "false": ""}, "mUint32Inner": {"1": {"id": 1}, "0": {}},
    "mSint64Color": {"-1": "COLOR_GREEN"}, "mFixed32Double": {"7": 0.25},
    "mStringSelf": {"k": {"fInt32": 1}},
    "cMessage": {"label": "chosen"},
    "fSelf": {"fSelf": {"fString": "two levels down"}},
    "default": "keyword", "largeFieldNumber": 1,
}


def load_pool(workdir):
    out = os.path.join(workdir, "reference.pb")
    args = ["protoc", "-I" + os.path.join(ROOT, "protos"), "-I" + os.path.join(ROOT, "Tests", "Protos"),
            "--include_imports", "--descriptor_set_out=" + out,
            "croupier/codectest/v1/kitchen_sink.proto", "grpc/testing/test.proto",
            "grpc/health/v1/health.proto", "grpc/reflection/v1/reflection.proto"]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(out, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    return pool


def cls(pool, name):
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


# --- random messages -------------------------------------------------------

F = descriptor_pb2.FieldDescriptorProto


def rand_scalar(rng, field):
    t = field.type
    edge = rng.random() < 0.3
    if t in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32):
        return rng.choice([0, -1, 1, 2**31 - 1, -(2**31), 127, 128, -129]) if edge else rng.randint(-(2**31), 2**31 - 1)
    if t in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
        return rng.choice([0, -1, 2**63 - 1, -(2**63), 2**35]) if edge else rng.randint(-(2**63), 2**63 - 1)
    if t in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return rng.choice([0, 1, 2**32 - 1, 2**28]) if edge else rng.randint(0, 2**32 - 1)
    if t in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return rng.choice([0, 1, 2**64 - 1, 2**56]) if edge else rng.randint(0, 2**64 - 1)
    if t == F.TYPE_BOOL:
        return rng.random() < 0.5
    if t == F.TYPE_DOUBLE:
        return rng.choice([0.0, -0.0, float("inf"), -float("inf"), 5e-324]) if edge else rng.uniform(-1e12, 1e12)
    if t == F.TYPE_FLOAT:
        v = rng.choice([0.0, -0.0, float("inf"), 1.5]) if edge else rng.uniform(-1e6, 1e6)
        return struct.unpack("<f", struct.pack("<f", v))[0]
    if t == F.TYPE_STRING:
        alphabet = "abcxyz é世🎲\n\"\\"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
    if t == F.TYPE_BYTES:
        return bytes(rng.randint(0, 255) for _ in range(rng.choice([0, 1, 5, 200])))
    if t == F.TYPE_ENUM:
        values = [v.number for v in field.enum_type.values]
        return rng.choice(values + [99, -7])  # unknown values: enums are open
    raise ValueError(t)


def fill(rng, msg, depth):
    desc = msg.DESCRIPTOR
    oneofs_done = set()
    for field in desc.fields:
        oneof = field.containing_oneof
        synthetic = oneof is not None and len(oneof.fields) == 1 and oneof.name == "_" + field.name
        if oneof is not None and not synthetic:
            if oneof.name in oneofs_done or rng.random() < 0.5:
                continue
            oneofs_done.add(oneof.name)
        elif rng.random() < 0.35:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_f, val_f = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            target = getattr(msg, field.name)
            for _ in range(rng.randint(0, 4)):
                k = rand_scalar(rng, key_f)
                if val_f.message_type is not None:
                    if depth < 2:
                        fill(rng, target[k], depth + 1)
                else:
                    target[k] = rand_scalar(rng, val_f)
        elif field.is_repeated:
            target = getattr(msg, field.name)
            for _ in range(rng.randint(0, 4)):
                if field.message_type is not None:
                    if depth < 2:
                        fill(rng, target.add(), depth + 1)
                else:
                    target.append(rand_scalar(rng, field))
        elif field.message_type is not None:
            if depth < 2:
                fill(rng, getattr(msg, field.name), depth + 1)
            else:
                getattr(msg, field.name).SetInParent()
        else:
            setattr(msg, field.name, rand_scalar(rng, field))
    return msg


# --- modes ----------------------------------------------------------------

def emit(workdir):
    pool = load_pool(workdir)
    KS = cls(pool, "croupier.codectest.v1.KitchenSink")
    rng = random.Random(20261123)
    expected = json_format.ParseDict(EXPECTED, KS())
    write(workdir, "fixed_kitchen.bin", expected)
    for i in range(RANDOM_CASES):
        write(workdir, f"random_{i}.croupier.codectest.v1.KitchenSink.bin", fill(rng, KS(), 0))
    for name in GRPC_TYPES:
        for i in range(25):
            write(workdir, f"random_{i}.{name}.bin", fill(rng, cls(pool, name)(), 0))
    print(f"emitted {RANDOM_CASES + 25 * len(GRPC_TYPES) + 1} reference encodings ({api_implementation.Type()})")


def write(workdir, name, msg):
    with open(os.path.join(workdir, name), "wb") as f:
        f.write(msg.SerializeToString(deterministic=True))


def verify(workdir):
    pool = load_pool(workdir)
    KS = cls(pool, "croupier.codectest.v1.KitchenSink")
    failures = []

    # Swift built the fixed message from its own literal values.
    swift_fixed = KS.FromString(open(os.path.join(workdir, "swift_fixed_kitchen.bin"), "rb").read())
    expected = json_format.ParseDict(EXPECTED, KS())
    if swift_fixed != expected:
        failures.append("swift_fixed_kitchen.bin differs from EXPECTED:\n"
                        f"swift:    {swift_fixed}\nexpected: {expected}")

    checked = 0
    for name in sorted(os.listdir(workdir)):
        if not name.startswith("swift_subset_"):
            continue
        # Swift decoded the message into a type that knows 2 of its fields and
        # re-encoded it: every other field must survive as an unknown field.
        original = KS.FromString(open(os.path.join(workdir, name.replace("swift_subset_", "random_")), "rb").read())
        roundtrip = KS.FromString(open(os.path.join(workdir, name), "rb").read())
        if roundtrip != original:
            failures.append(f"{name}: unknown fields lost in a Swift round trip")
        checked += 1

    if checked < RANDOM_CASES:
        failures.append(f"only {checked} subset round trips found, expected {RANDOM_CASES}")
    for f in failures:
        print("FAIL", f)
    print(f"verified ({api_implementation.Type()}) swift_fixed_kitchen.bin and {checked} unknown-field round trips: "
          f"{'OK' if not failures else str(len(failures)) + ' failures'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("emit", "verify"):
        sys.exit(__doc__)
    {"emit": emit, "verify": verify}[sys.argv[1]](sys.argv[2])
