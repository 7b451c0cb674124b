"""GPU selection from Spark's task resources, with fake task contexts (no GPU needed)."""

import logging
from types import SimpleNamespace

import pytest

from scoring import GpuAssignmentError
from scoring._device import CPU, Choice, bind_task, choose, physical_gpus, reset, task_gpu_addresses


@pytest.fixture(autouse=True)
def _fresh_binding():
    reset()
    yield
    reset()


def task(*addresses):
    """A fake TaskContext factory whose task holds GPU ``addresses`` (none: no gpu resource)."""
    resources = {"gpu": SimpleNamespace(name="gpu", addresses=list(addresses))} if addresses else {}
    return lambda: SimpleNamespace(resources=lambda: resources)


def test_task_gpu_addresses():
    assert task_gpu_addresses(task("0", "3")) == ("0", "3")
    assert task_gpu_addresses(task()) == ()
    assert task_gpu_addresses(lambda: None) == ()  # driver side: no task


@pytest.mark.parametrize(
    "addresses, visible, physical",
    [
        (["0"], None, ("0",)),
        (["2", "3"], "", ("2", "3")),
        (["0"], "4,6", ("4",)),
        (["1"], "4, 6", ("6",)),
        (["1", "0"], "4,6,7", ("6", "4")),
        (["1"], "GPU-aaaa,GPU-bbbb", ("GPU-bbbb",)),
    ],
)
def test_physical_gpus(addresses, visible, physical):
    assert physical_gpus(addresses, visible) == physical


@pytest.mark.parametrize("address", ["2", "GPU-aaaa", "-1"])
def test_an_address_outside_cuda_visible_devices_is_an_error(address):
    with pytest.raises(GpuAssignmentError, match=rf"{address!r} is not a position in CUDA_VISIBLE_DEVICES='4,6'"):
        physical_gpus([address], "4,6")


@pytest.mark.parametrize(
    "asked, bound, choice",
    [
        (("4",), None, Choice("4", 0, ("4",), ("4",))),  # first GPU task: narrow the process
        (("4", "6"), None, Choice("4,6", 0, ("4", "6"), ("4", "6"))),
        (("4",), ("4",), Choice(None, 0, ("4",), ("4",))),  # reused worker, same GPU
        (("6",), ("4", "6"), Choice(None, 1, ("6",), ("6",))),  # bound to two: the second
        (("6",), ("4",), Choice(None, 0, ("4",), ("6",))),  # bound elsewhere: stays there
    ],
)
def test_choose(asked, bound, choice):
    assert choose(asked, bound) == choice


def test_a_task_without_gpus_changes_nothing():
    env = {"CUDA_VISIBLE_DEVICES": "3"}
    assert bind_task(task(), env, tf_gpu_count=lambda: 1) is CPU
    assert env == {"CUDA_VISIBLE_DEVICES": "3"} and CPU.key == "cpu"


def test_first_gpu_task_narrows_cuda_visible_devices_to_its_gpu():
    env: dict[str, str] = {}
    placement = bind_task(task("1"), env, tf_gpu_count=lambda: 1)
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert (placement.device, placement.gpus, placement.key) == ("/GPU:0", ("1",), "gpu:1")


def test_addresses_are_positions_in_an_inherited_cuda_visible_devices():
    env = {"CUDA_VISIBLE_DEVICES": "3,5,7"}
    placement = bind_task(task("2"), env, tf_gpu_count=lambda: 1)
    assert env["CUDA_VISIBLE_DEVICES"] == "7"
    assert placement.key == "gpu:7"
    # A later task is still read against the executor's list, not the narrowed one.
    again = bind_task(task("2"), env, tf_gpu_count=lambda: 1)
    assert again == placement and env["CUDA_VISIBLE_DEVICES"] == "7"


def test_a_two_gpu_task_then_tasks_on_either_gpu():
    env = {"CUDA_VISIBLE_DEVICES": "4,6"}
    first = bind_task(task("0", "1"), env, tf_gpu_count=lambda: 2)
    assert env["CUDA_VISIBLE_DEVICES"] == "4,6" and first.device == "/GPU:0"
    second = bind_task(task("1"), env, tf_gpu_count=lambda: 2)
    assert (second.device, second.key) == ("/GPU:1", "gpu:6")


def test_a_reused_worker_asked_for_another_gpu_stays_on_its_own_and_says_so_once(caplog):
    env: dict[str, str] = {}
    bind_task(task("0"), env, tf_gpu_count=lambda: 1)
    with caplog.at_level(logging.WARNING, logger="scoring._device"):
        for _ in range(3):
            placement = bind_task(task("1"), env, tf_gpu_count=lambda: 1)
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert (placement.device, placement.gpus, placement.asked) == ("/GPU:0", ("0",), ("1",))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "asked for GPU 1" in warnings[0] and "bound to GPU 0" in warnings[0]


def test_gpu_task_with_tensorflow_seeing_no_gpu_runs_on_cpu(caplog):
    env: dict[str, str] = {}
    with caplog.at_level(logging.WARNING, logger="scoring._device"):
        assert bind_task(task("0"), env, tf_gpu_count=lambda: 0) is CPU
        assert bind_task(task("0"), env, tf_gpu_count=lambda: 0) is CPU
    assert env["CUDA_VISIBLE_DEVICES"] == "0"  # bound anyway: a CUDA build would see only that GPU
    assert [r.getMessage() for r in caplog.records] == [
        "task has GPU 0 but TensorFlow sees no GPU (tensorflow-cpu, or no CUDA driver): running on the CPU"
    ]


def test_bad_address_fails_the_task_before_touching_the_environment():
    env = {"CUDA_VISIBLE_DEVICES": "5"}
    with pytest.raises(GpuAssignmentError, match="'1' is not a position"):
        bind_task(task("1"), env, tf_gpu_count=lambda: 1)
    assert env == {"CUDA_VISIBLE_DEVICES": "5"}
