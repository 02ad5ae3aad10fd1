"""The committed stubs match protos/*.proto, and the wire format matches the leaf API."""

from __future__ import annotations

import filecmp
import importlib.util
from pathlib import Path

from locust_hyperfaas.proto import common_pb2, leaf_pb2

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "locust_hyperfaas" / "proto"


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "gen_protos", ROOT / "scripts" / "gen_protos.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerating_the_stubs_gives_the_committed_files(tmp_path):
    written = load_generator().generate(tmp_path)

    names = sorted(path.name for path in written)
    assert names == sorted(p.name for p in COMMITTED.glob("*_pb2*.py*"))
    match, mismatch, errors = filecmp.cmpfiles(
        tmp_path, COMMITTED, names, shallow=False
    )
    assert mismatch == [] and errors == [], "run `make protos` and commit the result"
    assert sorted(match) == names


def field_numbers(message) -> dict[str, tuple[int, int]]:
    return {f.name: (f.number, f.type) for f in message.DESCRIPTOR.fields}


def test_messages_have_the_leaf_api_field_numbers_and_types():
    fd = common_pb2.DESCRIPTOR.message_types_by_name["Config"].fields[0]
    string, int64, int32, message, bytes_ = (
        fd.TYPE_STRING,
        fd.TYPE_INT64,
        fd.TYPE_INT32,
        fd.TYPE_MESSAGE,
        fd.TYPE_BYTES,
    )

    assert field_numbers(common_pb2.Config) == {
        "memory": (1, int64),
        "cpu": (2, message),
        "timeout": (3, int32),
        "max_concurrency": (4, int32),
    }
    assert field_numbers(common_pb2.CPUConfig) == {
        "period": (1, int64),
        "quota": (2, int64),
    }
    for name in ("Error", "InstanceID", "FunctionID", "ImageTag"):
        (only,) = getattr(common_pb2, name).DESCRIPTOR.fields
        assert (only.number, only.type) == (1, string)
    assert field_numbers(leaf_pb2.ScheduleCallRequest) == {
        "functionID": (1, message),
        "data": (2, bytes_),
    }
    assert field_numbers(leaf_pb2.ScheduleCallResponse) == {
        "data": (1, bytes_),
        "error": (2, message),
    }
    assert field_numbers(leaf_pb2.CreateFunctionRequest) == {
        "image_tag": (1, message),
        "config": (2, message),
    }
    assert field_numbers(leaf_pb2.CreateFunctionResponse) == {
        "functionID": (1, message)
    }


def test_the_service_has_the_leaf_method_names():
    service = leaf_pb2.DESCRIPTOR.services_by_name["Leaf"]

    assert service.full_name == "leaf.Leaf"
    assert {
        m.name: (m.input_type.full_name, m.output_type.full_name)
        for m in service.methods
    } == {
        "CreateFunction": ("leaf.CreateFunctionRequest", "leaf.CreateFunctionResponse"),
        "ScheduleCall": ("leaf.ScheduleCallRequest", "leaf.ScheduleCallResponse"),
    }
