"""CLI: publish, versions, verify, inspect (exit codes, --json, one-line errors)."""

import io
import json
import os
import re
import types
import uuid

import fsspec
import pytest

import hdfs_models._signatures as signatures_mod
from hdfs_models import cli, resolve
from hdfs_models._manifest import MANIFEST_NAME, Manifest
from hdfs_models.testing import write_fake_model

SIGS = {
    "serving_default": {
        "method_name": "tensorflow/serving/predict",
        "inputs": {"x": {"dtype": "float32", "shape": [-1, 4]}},
        "outputs": {"probs": {"dtype": "float32", "shape": [-1, 3]}, "raw": {"dtype": "string", "shape": None}},
    }
}


@pytest.fixture
def fake_signatures(monkeypatch):
    """A stand-in for read_signatures (no TensorFlow) in the one module that reads signatures; records the dirs read."""
    fake = types.SimpleNamespace(seen=[])

    def read_signatures(local_dir):
        fake.seen.append(sorted(os.listdir(local_dir)))
        return SIGS

    monkeypatch.setattr(signatures_mod, "read_signatures", read_signatures)  # the one reader
    return fake


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_publish_versions_verify_round_trip(tmp_path, capsys, fake_signatures):
    model = write_fake_model(str(tmp_path / "export"))
    base = str(tmp_path / "store" / "mnist")
    code, out, _ = run(capsys, "publish", model, base, "--json")
    assert code == 0
    result = json.loads(out)
    assert (result["version"], result["name"], result["manifest"]) == (1, "mnist", True)
    code, out, _ = run(capsys, "publish", model, base)
    assert code == 0 and out.startswith(f"published {base}/2 (version 2, 3 files")
    os.makedirs(os.path.join(base, "3"))  # being written: incomplete
    code, out, _ = run(capsys, "versions", base, "--json")
    assert json.loads(out) == {
        "base": base,
        "latest": 2,
        "versions": [
            {"version": 1, "complete": True},
            {"version": 2, "complete": True},
            {"version": 3, "complete": False},
        ],
    }
    code, out, _ = run(capsys, "versions", base)
    assert out.splitlines() == ["1", "2", "3  (incomplete)", "latest: 2"]
    code, out, _ = run(capsys, "verify", base, "--version", "1")
    assert code == 0 and out.startswith(f"ok: {base}/1 (manifest, 3 files")
    code, out, _ = run(capsys, "verify", os.path.join(base, "2"), "--json")
    verified = json.loads(out)
    assert code == 0 and verified["ok"] is True
    # the digest verify reports is the one published into version 2's manifest
    assert (
        verified["digest"] == Manifest.from_json(open(os.path.join(base, "2", MANIFEST_NAME), "rb").read(), base).digest
    )
    assert verified["digest"] == resolve(base, 2).digest


def test_verify_reports_a_mismatch_on_one_line(tmp_path, capsys):
    model = write_fake_model(str(tmp_path / "export"), shards=2)
    base = str(tmp_path / "store")
    assert run(capsys, "publish", model, base, "--no-signatures")[0] == 0
    shard = os.path.join(base, "1", "variables", "variables.data-00001-of-00002")
    data = open(shard, "rb").read()
    open(shard, "wb").write(bytes([data[0] ^ 1]) + data[1:])  # same size, one flipped bit
    code, out, err = run(capsys, "verify", base)
    assert code == 1 and out == ""
    assert err.strip() == (
        f"hdfs-models verify: error: {base}/1: does not match its manifest: "
        "variables/variables.data-00001-of-00002: sha256 mismatch"
    )
    code, _, err = run(capsys, "verify", os.path.join(base, "1"), "--json")
    assert code == 1 and json.loads(err)["error"] == "IntegrityError"
    os.remove(os.path.join(base, "1", "variables", "variables.index"))
    code, _, err = run(capsys, "verify", os.path.join(base, "1"))
    assert code == 1 and "sha256 mismatch (+1 more)" in err  # the missing index is the second problem


def test_verify_strict_fails_on_unlisted_files(tmp_path, capsys):
    model = write_fake_model(str(tmp_path / "export"))
    base = str(tmp_path / "store")
    run(capsys, "publish", model, base, "--no-signatures")
    open(os.path.join(base, "1", "stray.txt"), "w").write("x")
    code, out, _ = run(capsys, "verify", base)
    assert code == 0 and "1 unlisted file(s): stray.txt" in out
    code, _, err = run(capsys, "verify", base, "--strict")
    assert code == 1 and "unlisted file stray.txt" in err


def test_verify_local_dir_without_manifest_checks_completeness(tmp_path, capsys):
    model = write_fake_model(str(tmp_path / "export"), shards=3)
    code, out, _ = run(capsys, "verify", model)
    assert code == 0 and "(completeness, 5 files" in out
    os.remove(os.path.join(model, "variables", "variables.data-00002-of-00003"))
    code, _, err = run(capsys, "verify", model)
    assert code == 1 and "missing variables/variables.data-00002-of-00003" in err  # B10


def test_verify_missing_url_exits_1_naming_it(tmp_path, capsys):
    code, _, err = run(capsys, "verify", str(tmp_path / "nope"))
    assert code == 1 and str(tmp_path / "nope") in err and "not found" in err
    assert len(err.strip().splitlines()) == 1


def test_inspect_prints_manifest_signatures(tmp_path, capsys, fake_signatures):
    model = write_fake_model(str(tmp_path / "export"))
    base = str(tmp_path / "store")
    run(capsys, "publish", model, base)
    fake_signatures.seen.clear()
    code, out, _ = run(capsys, "inspect", base)
    assert code == 0 and fake_signatures.seen == []  # from the manifest, TensorFlow not needed
    assert "signature_def['serving_default']:" in out
    assert "    inputs['x'] tensor_info:\n        dtype: float32\n        shape: (-1, 4)" in out
    assert "shape: unknown rank" in out
    assert "Method name is: tensorflow/serving/predict" in out
    code, out, _ = run(capsys, "inspect", base, "--json")
    assert json.loads(out)["signatures"] == SIGS and json.loads(out)["source"] == "manifest"


def test_inspect_without_manifest_reads_only_saved_model_pb(capsys, fake_signatures):
    fs = fsspec.filesystem("memory")
    base = f"/inspect-{uuid.uuid4().hex}"
    write_fake_model(f"{base}/4", fs=fs, empty_assets=False)
    code, out, _ = run(capsys, "inspect", f"memory://{base}", "--json")
    assert code == 0
    assert json.loads(out)["source"] == "saved_model.pb" and json.loads(out)["version"] == 4
    assert fake_signatures.seen == [["saved_model.pb"]]
    fs.rm(base, recursive=True)


def test_usage_errors_exit_2(capsys):
    assert run(capsys, "publish", "only-one-arg")[0] == 2
    assert run(capsys, "versions")[0] == 2


def test_bad_storage_option_is_an_error(tmp_path, capsys):
    code, _, err = run(capsys, "versions", str(tmp_path), "-o", "novalue")
    assert code == 1 and "KEY=VALUE" in err


def test_progress_bar_shows_bytes_rate_and_time_left():
    stream = io.StringIO()
    progress = cli.ProgressBar(stream, label="publish")
    progress(5_000_000, 10_000_000)
    progress(4_000_000, 10_000_000)  # a file fetched again: the count goes back
    progress(10_000_000, 10_000_000)  # the total closes the bar
    last = stream.getvalue().split("\r")[-1]
    assert re.fullmatch(r"publish: 100%\|#+\| 10\.0M/10\.0M \[\d\d:\d\d<\d\d:\d\d, +[\d.]+[kMGT]?B/s\]\n", last), last
    progress.finish()  # nothing left open
    assert stream.getvalue().endswith("B/s]\n")


def test_progress_finish_closes_a_bar_left_open():
    stream = io.StringIO()
    progress = cli.ProgressBar(stream, label="fetch")
    progress(1_000_000, 2_000_000)  # the operation fails here
    progress.finish()
    assert stream.getvalue().endswith("\n") and "1.00M/2.00M" in stream.getvalue()


@pytest.mark.parametrize(
    "module, target, argv",
    [
        ("hdfs_models.cli._cache", "resolve", ["fetch", "hdfs://nn:8020/models/m"]),
        ("hdfs_models.cli._archive", "pack", ["pack", "hdfs://nn:8020/models/m", "OUT"]),
        ("hdfs_models.cli._cache", "sweep_store", ["gc", "--store", "hdfs://nn:8020/models/m"]),
        ("hdfs_models.cli._doctor", "run_checks", ["doctor", "hdfs://nn:8020/models/m"]),
    ],
)
def test_store_commands_pass_storage_options(monkeypatch, capsys, tmp_path, module, target, argv):
    """fetch, pack, gc --store and doctor take -o KEY=VALUE like publish/versions/verify/inspect."""
    import importlib

    seen = {}

    class Stop(BaseException):  # not an Exception: the frame turns every Exception into one line
        pass

    def record(*args, **kwargs):
        seen.update(kwargs.get("storage_options") or {})
        raise Stop

    monkeypatch.setattr(importlib.import_module(module), target, record)
    argv = [str(tmp_path / "out.tar") if a == "OUT" else a for a in argv]
    with pytest.raises(Stop):
        cli.main([*argv, "-o", "user=alice", "-o", "kerberos_keytab=/k"])
    assert seen == {"user": "alice", "kerberos_keytab": "/k"}


def test_gc_of_the_node_cache_refuses_storage_options(tmp_path, capsys):
    code, _, err = run(capsys, "gc", "--cache", str(tmp_path), "-o", "user=alice")
    assert code == 1 and "-o apply to --store" in err
