#!/usr/bin/env python3
"""Conformance of `croupier json` (the proto3 JSON mapping in Wire) against
Python protobuf's json_format, on every message of every file in protos/.

  json_conformance.py PATH-TO-CROUPIER

For each message type it builds instances (empty, every field at edge values,
seeded random fills, one per oneof member) and checks both ways:

- binary -> JSON: croupier's JSON, parsed, equals json_format.MessageToJson's.
- JSON -> binary: json_format's JSON, and the same message written the other
  ways the mapping accepts on input (proto field names, enums as numbers,
  64-bit integers as JSON numbers), each decode to the original message.
- Refusals: unknown fields (accepted with --ignore-unknown), values out of
  range, wrong JSON types, a field or a oneof set twice: croupier refuses
  exactly what json_format.Parse refuses.

Prints one summary line; exits 1 on the first list of mismatches.
"""
import base64
import json
import math
import os
import random
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testkit  # noqa: E402

from google.protobuf import descriptor as D  # noqa: E402
from google.protobuf import json_format  # noqa: E402

FILES = [
    ("json_croupier", [("croupier/loyalty/v1/loyalty.proto", "loyalty"), ("croupier/staging/v1/staging.proto", "staging"),
                       ("croupier/gametables/v1/gametables.proto", "gametables"), ("croupier/wire/v1/wire.proto", "wire")], None),
    ("json_grpc_testing", [("grpc/testing/%s.proto" % n, n) for n in ("test", "messages", "empty")],
     lambda text: text.replace('import "grpc/testing/', 'import "json_grpc_testing/')),
    ("json_grpc_ops", [("grpc/health/v1/health.proto", "health"), ("grpc/reflection/v1/reflection.proto", "reflection")], None),
    ("json_grpc_alpha", [("grpc/reflection/v1alpha/reflection.proto", "reflection")], None),
]

INT_EDGES = {
    D.FieldDescriptor.TYPE_INT32: [-2**31, 2**31 - 1, -1, 1], D.FieldDescriptor.TYPE_SINT32: [-2**31, 2**31 - 1, -1],
    D.FieldDescriptor.TYPE_SFIXED32: [-2**31, 2**31 - 1, -7], D.FieldDescriptor.TYPE_UINT32: [2**32 - 1, 1],
    D.FieldDescriptor.TYPE_FIXED32: [2**32 - 1, 3], D.FieldDescriptor.TYPE_INT64: [-2**63, 2**63 - 1, -1, 2**53 + 1],
    D.FieldDescriptor.TYPE_SINT64: [-2**63, 2**63 - 1, -3], D.FieldDescriptor.TYPE_SFIXED64: [-2**63, 2**63 - 1],
    D.FieldDescriptor.TYPE_UINT64: [2**64 - 1, 2**63, 1], D.FieldDescriptor.TYPE_FIXED64: [2**64 - 1, 5],
}
FLOAT_EDGES = [0.1, -2.5, 1e-300, 1.7976931348623157e308, 5e-324, float("inf"), float("-inf"), float("nan"), -0.0, 123456789.125]
FLOAT32_EDGES = [0.1, -2.5, 3.4028234663852886e38, 1.401298464324817e-45, float("inf"), float("nan"), 1e-7]
STRINGS = ["", "plain", "quote \" backslash \\ slash /", "ctl \x00\x01\x1f\n\t", "ünïcödé", "emoji 🂡 \U0010ffff", "\u2028\u2029"]
BYTES = [b"", bytes(range(256)), b"\xff\xfe", b"a", b"ab"]


KITCHEN_SINK = "croupier/codectest/v1/kitchen_sink.proto"  # a test proto with every field kind


def kitchen_sink():
    """Python classes and a descriptor set for the test-only kitchen-sink proto (Tests/Protos)."""
    from grpc_tools import protoc
    import tempfile
    out = tempfile.mkdtemp(prefix="croupier_json_sink_")
    protos = os.path.join(testkit.ROOT, "Tests", "Protos")
    descriptor_set = os.path.join(out, "sink.pb")
    if protoc.main(["protoc", "-I" + protos, "--python_out=" + out, "--descriptor_set_out=" + descriptor_set,
                    "--include_imports", KITCHEN_SINK]) != 0:
        raise SystemExit("protoc failed on " + KITCHEN_SINK)
    sys.path.insert(0, out)
    return __import__("croupier.codectest.v1.kitchen_sink_pb2", fromlist=["DESCRIPTOR"]), descriptor_set


def load():
    """Every message class of the compiled files and the kitchen sink, by full name; the sink's descriptor set."""
    classes = {}
    sink, descriptor_set = kitchen_sink()
    modules = [sink]
    for package, files, rewrite in FILES:
        testkit.compile_stubs(package, files, rewrite or (lambda text: text))
        modules += [__import__("%s.%s_pb2" % (package, name), fromlist=["DESCRIPTOR"]) for _, name in files]
    for module in modules:
        def walk(desc):
            if desc.GetOptions().map_entry:
                return
            classes[desc.full_name] = getattr_path(module, desc)
            for nested in desc.nested_types:
                walk(nested)
        for desc in module.DESCRIPTOR.message_types_by_name.values():
            walk(desc)
    return classes, descriptor_set


def getattr_path(module, desc):
    names = []
    d = desc
    while d is not None:
        names.append(d.name)
        d = d.containing_type
    obj = module
    for n in reversed(names):
        obj = getattr(obj, n)
    return obj


def scalar(field, rng, edge):
    t = field.type
    if t in INT_EDGES:
        return rng.choice(INT_EDGES[t]) if edge else rng.randint(-1000, 1000) if t in (
            D.FieldDescriptor.TYPE_INT32, D.FieldDescriptor.TYPE_INT64, D.FieldDescriptor.TYPE_SINT32,
            D.FieldDescriptor.TYPE_SINT64, D.FieldDescriptor.TYPE_SFIXED32, D.FieldDescriptor.TYPE_SFIXED64) else rng.randint(0, 5000)
    if t == D.FieldDescriptor.TYPE_DOUBLE:
        return rng.choice(FLOAT_EDGES) if edge else rng.uniform(-1e6, 1e6)
    if t == D.FieldDescriptor.TYPE_FLOAT:
        return rng.choice(FLOAT32_EDGES) if edge else rng.uniform(-100, 100)
    if t == D.FieldDescriptor.TYPE_BOOL:
        return rng.choice([True, False])
    if t == D.FieldDescriptor.TYPE_STRING:
        return rng.choice(STRINGS) if edge else "s%d" % rng.randint(0, 10**6)
    if t == D.FieldDescriptor.TYPE_BYTES:
        return rng.choice(BYTES) if edge else bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 9)))
    if t == D.FieldDescriptor.TYPE_ENUM:
        values = [v.number for v in field.enum_type.values]
        return rng.choice(values + ([values[-1] + 40] if edge else []))  # an unnamed number too
    raise ValueError(t)


def fill(msg, rng, edge, depth, oneof_choice=None):
    for field in msg.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        if oneof is not None and not (field.has_presence and len(oneof.fields) == 1 and oneof.name.startswith("_")):
            members = list(oneof.fields)
            wanted = members[oneof_choice % len(members)] if oneof_choice is not None else rng.choice(members)
            if field is not wanted:
                continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_f, val_f = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            target = getattr(msg, field.name)
            for _ in range(rng.randint(1, 3)):
                key = scalar(key_f, rng, edge)
                if val_f.message_type is not None:
                    if depth > 0:
                        fill(target[key], rng, edge, depth - 1)
                    else:
                        target[key].SetInParent()
                else:
                    target[key] = scalar(val_f, rng, edge)
        elif field.is_repeated:
            target = getattr(msg, field.name)
            for _ in range(rng.randint(1, 3)):
                if field.message_type is not None:
                    item = target.add()
                    if depth > 0:
                        fill(item, rng, edge, depth - 1)
                else:
                    target.append(scalar(field, rng, edge))
        elif field.message_type is not None:
            if depth > 0:
                fill(getattr(msg, field.name), rng, edge, depth - 1)
            else:
                getattr(msg, field.name).SetInParent()
        else:
            setattr(msg, field.name, scalar(field, rng, edge))
    return msg


def instances(cls, seed):
    rng = random.Random(seed)
    out = [cls(), fill(cls(), rng, True, 2), fill(cls(), rng, True, 1)]
    out += [fill(cls(), rng, False, 2) for _ in range(3)]
    oneofs = [o for o in cls.DESCRIPTOR.oneofs if not o.name.startswith("_")]
    for o in oneofs:
        out += [fill(cls(), rng, True, 1, oneof_choice=i) for i in range(len(o.fields))]
    return out


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def same(a, b, desc=None, field=None):
    """JSON values equal, numbers compared as numbers (NaN equal to NaN; a float field's at float
    precision: 1e-45 and 1.4013e-45 are the same float). `desc`: the message type of a and b."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if field is not None and field.type == D.FieldDescriptor.TYPE_FLOAT:
            a, b = f32(a), f32(b)
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return False
        for k in a:
            if desc is not None and field is None:  # a message: each member by its field
                f = next((x for x in desc.fields if x.json_name == k), None)
                if f is None:
                    return False
                entry = f.message_type if f.message_type is not None and f.message_type.GetOptions().map_entry else None
                if entry is not None:  # a map: each value by the entry's value field
                    vf = entry.fields_by_name["value"]
                    if not all(same(a[k][m], b[k][m], vf.message_type, None if vf.message_type else vf) for m in a[k]):
                        return False
                elif not same(a[k], b[k], f.message_type, None if f.message_type else f):
                    return False
            elif not same(a[k], b[k]):
                return False
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, desc, field) for x, y in zip(a, b))
    return a == b


def croupier(exe, mode, lines, extra=()):
    """Runs `croupier json MODE - [extra]` over TYPE<tab>payload lines; returns its output lines."""
    p = subprocess.run([exe, "json", mode, "-", "--descriptor-set", DESCRIPTOR_SET] + list(extra), input="\n".join(lines) + "\n", capture_output=True, text=True)
    out = p.stdout.split("\n")[:-1]
    if len(out) != len(lines):
        raise SystemExit("croupier json %s answered %d lines for %d: %s" % (mode, len(out), len(lines), p.stderr[-2000:]))
    return out


def variants(msg, canonical):
    """The other spellings of the same message that the mapping accepts on input."""
    out = [json_format.MessageToJson(msg, preserving_proto_field_name=True, indent=None),
           json_format.MessageToJson(msg, use_integers_for_enums=True, indent=None)]
    numbers = json.loads(canonical)

    def unquote(value, desc):  # 64-bit integers as JSON numbers
        if not isinstance(value, dict):
            return value
        for f in desc.fields:
            if f.json_name not in value:
                continue
            v = value[f.json_name]
            if f.message_type is not None and f.message_type.GetOptions().map_entry:
                vf = f.message_type.fields_by_name["value"]
                if vf.message_type is not None:
                    for k in v:
                        v[k] = unquote(v[k], vf.message_type)
                elif vf.type in INT64_TYPES:
                    for k in v:
                        v[k] = int(v[k])
            elif f.message_type is not None:
                value[f.json_name] = [unquote(x, f.message_type) for x in v] if isinstance(v, list) else unquote(v, f.message_type)
            elif f.type in INT64_TYPES:
                value[f.json_name] = [int(x) for x in v] if isinstance(v, list) else int(v)
        return value
    out.append(json.dumps(unquote(numbers, msg.DESCRIPTOR)))
    return out


DESCRIPTOR_SET = None
INT64_TYPES = {D.FieldDescriptor.TYPE_INT64, D.FieldDescriptor.TYPE_UINT64, D.FieldDescriptor.TYPE_SINT64,
               D.FieldDescriptor.TYPE_FIXED64, D.FieldDescriptor.TYPE_SFIXED64}


def refusals(classes):
    """(type, JSON, ignore_unknown, json_format_is_laxer) cases where the mapping must refuse or accept; built from field kinds."""
    cases = []
    for name, cls in classes.items():
        cases.append((name, json.dumps({"noSuchField_": 1}), False, False))
        cases.append((name, json.dumps({"noSuchField_": 1}), True, False))
        for f in cls.DESCRIPTOR.fields:
            j = f.json_name
            if f.is_repeated:
                cases.append((name, json.dumps({j: 5}), False, False))
                continue
            if f.name != j:
                cases.append((name, '{"%s": null, "%s": null}' % (f.name, j), False, False))
            if f.type in INT_EDGES:
                bits = 32 if f.type not in INT64_TYPES else 64
                for v in ["1.5", "\"12\"", "\"1e2\"", "1e2", "\"abc\"", "true", str(2**bits), "-" + str(2**(bits - 1) + 1), "-1", "\"-0\""]:
                    cases.append((name, '{"%s": %s}' % (j, v), False, python_is_laxer(f.type, v)))
            elif f.type in (D.FieldDescriptor.TYPE_DOUBLE, D.FieldDescriptor.TYPE_FLOAT):
                for v in ["\"NaN\"", "\"-Infinity\"", "\"1.25\"", "\"x\"", "1e39", "true", "\"\""]:
                    cases.append((name, '{"%s": %s}' % (j, v), False, python_is_laxer(f.type, v)))
            elif f.type == D.FieldDescriptor.TYPE_BOOL:
                for v in ["\"true\"", "1", "false"]:
                    cases.append((name, '{"%s": %s}' % (j, v), False, python_is_laxer(f.type, v)))
            elif f.type == D.FieldDescriptor.TYPE_BYTES:
                for v in ["\"-_-_\"", "\"YQ\"", "\"YQ==\"", "\"!!\"", "5"]:
                    cases.append((name, '{"%s": %s}' % (j, v), False, python_is_laxer(f.type, v)))
            elif f.type == D.FieldDescriptor.TYPE_ENUM:
                for v, ignore in [("\"NO_SUCH_VALUE\"", False), ("\"NO_SUCH_VALUE\"", True), ("1", False), ("1.5", False), ("true", False)]:
                    cases.append((name, '{"%s": %s}' % (j, v), ignore, python_is_laxer(f.type, v)))
            elif f.type == D.FieldDescriptor.TYPE_STRING:
                for v in ["5", "\"\\ud83c\\udca1\"", "[]"]:
                    cases.append((name, '{"%s": %s}' % (j, v), False, python_is_laxer(f.type, v)))
            elif f.message_type is not None:
                cases.append((name, '{"%s": 5}' % j, False, False))
        for o in cls.DESCRIPTOR.oneofs:
            if len(o.fields) > 1:
                a, b = o.fields[0], o.fields[1]
                sample = {}
                for f in (a, b):
                    sample[f.json_name] = {} if f.message_type is not None else scalar_json(f)
                cases.append((name, json.dumps(sample), False, False))
    return cases


def python_is_laxer(field_type, text):
    """Inputs the mapping refuses but json_format accepts: Python's bool is an int (true for a
    number or an enum), it truncates a fractional enum number, and its base64 decoder skips
    characters outside the alphabet. croupier follows the spec and must refuse these."""
    if text == "true" and field_type in (D.FieldDescriptor.TYPE_DOUBLE, D.FieldDescriptor.TYPE_FLOAT, D.FieldDescriptor.TYPE_ENUM):
        return True
    if text == "1.5" and field_type == D.FieldDescriptor.TYPE_ENUM:
        return True
    return text == '"!!"' and field_type == D.FieldDescriptor.TYPE_BYTES


def scalar_json(f):
    if f.type == D.FieldDescriptor.TYPE_STRING:
        return "x"
    if f.type == D.FieldDescriptor.TYPE_BOOL:
        return True
    if f.type == D.FieldDescriptor.TYPE_ENUM:
        return f.enum_type.values[-1].name
    if f.type == D.FieldDescriptor.TYPE_BYTES:
        return "eA=="
    return 1


def main():
    global DESCRIPTOR_SET
    exe = sys.argv[1]
    classes, DESCRIPTOR_SET = load()
    failures = []
    to_json_lines, to_json_expect = [], []
    to_bin_lines, to_bin_expect = [], []
    for i, (name, cls) in enumerate(sorted(classes.items())):
        for msg in instances(cls, seed=i):
            to_json_lines.append("%s\t%s" % (name, base64.b64encode(msg.SerializeToString()).decode()))
            canonical = json_format.MessageToJson(msg, indent=None)
            to_json_expect.append((name, msg, canonical))
            for text in [canonical] + variants(msg, canonical):
                to_bin_lines.append("%s\t%s" % (name, text))
                to_bin_expect.append((name, msg, text))
    for line, (name, msg, canonical) in zip(croupier(exe, "to-json", to_json_lines), to_json_expect):
        if line.startswith("error:") or not same(json.loads(line), json.loads(canonical), msg.DESCRIPTOR):
            failures.append("to-json %s:\n  croupier:    %s\n  json_format: %s" % (name, line[:3000], canonical[:3000]))
    for line, (name, msg, text) in zip(croupier(exe, "to-binary", to_bin_lines), to_bin_expect):
        if line.startswith("error:"):
            failures.append("to-binary %s refused %s: %s" % (name, text, line))
            continue
        back = classes[name]()
        back.ParseFromString(base64.b64decode(line))
        if not same(json.loads(json_format.MessageToJson(back, indent=None)), json.loads(json_format.MessageToJson(msg, indent=None)),
                    msg.DESCRIPTOR):
            failures.append("to-binary %s: %s\n  gave %s" % (name, text[:3000], str(back)[:3000]))
    cases = refusals(classes)
    refused = accepted = stricter = 0
    for ignore in (False, True):
        subset = [(n, t, lax) for n, t, ig, lax in cases if ig == ignore]
        answers = croupier(exe, "to-binary", ["%s\t%s" % (n, t) for n, t, _ in subset], ["--ignore-unknown"] if ignore else [])
        for (name, text, laxer), line in zip(subset, answers):
            if laxer:  # the spec refuses it; json_format does not
                stricter += 1
                if not line.startswith("error:"):
                    failures.append("%s %s: croupier accepted what the mapping refuses" % (name, text))
                continue
            try:
                expected = classes[name]()
                json_format.Parse(text, expected, ignore_unknown_fields=ignore)
                python_ok = True
            except json_format.ParseError:
                python_ok = False
            ours_ok = not line.startswith("error:")
            refused += not ours_ok
            accepted += ours_ok
            if ours_ok != python_ok:
                failures.append("%s %s%s: croupier %s, json_format %s" % (
                    name, text, " (ignoring unknown)" if ignore else "", line if not ours_ok else "accepted", "accepted" if python_ok else "refused"))
            elif ours_ok:
                back = classes[name]()
                back.ParseFromString(base64.b64decode(line))
                if back != expected:
                    failures.append("%s %s: croupier decoded %s, json_format %s" % (name, text, back, expected))
    print("json conformance: %d message types, %d to-json, %d to-binary, %d refusal cases (%d refused, %d accepted as json_format does,"
          " %d refused by the spec where json_format is laxer), %d mismatches"
          % (len(classes), len(to_json_lines), len(to_bin_lines), refused + accepted + stricter, refused, accepted, stricter, len(failures)))
    for f in failures[:int(os.environ.get("JSON_CONFORMANCE_SHOW", "25"))]:
        print(f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
