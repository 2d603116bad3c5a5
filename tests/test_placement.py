"""Placement of sweep workers on GPUs and CPU threads (GPU lists given as data), and the plan and its
checks through the installed `sweeplab sweep` command on this CPU machine."""

from __future__ import annotations

import os
import re

import pytest

from conftest import run_cli
from sweeplab.errors import ConfigError
from sweeplab.sweep.placement import auto_workers, check, make_plan, parse_visible

EIGHT = [str(i) for i in range(8)]


def test_eight_gpus_two_per_trial_make_four_disjoint_workers():
    plan = make_plan("auto", 2, EIGHT, cores=32)
    assert plan.gpus == [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"]]
    assert [plan.env(i)["CUDA_VISIBLE_DEVICES"] for i in range(4)] == ["0,1", "2,3", "4,5", "6,7"]
    assert plan.unused == [] and plan.threads == 8
    assert plan.describe() == "plan: worker 0 → GPU 0,1 · worker 1 → GPU 2,3 · worker 2 → GPU 4,5 · worker 3 → GPU 6,7"


def test_cuda_visible_devices_ids_are_kept_one_per_worker():
    gpus = parse_visible("3,5")
    plan = make_plan("auto", 1, gpus, cores=16)
    assert plan.gpus == [["3"], ["5"]]
    assert plan.env(1) == {"CUDA_VISIBLE_DEVICES": "5"}        # ids the user gave: their order is kept
    assert plan.describe() == "plan: worker 0 → GPU 3 · worker 1 → GPU 5"


def test_three_per_trial_on_eight_gpus_leaves_two_unused_and_says_so():
    plan = make_plan("auto", 3, EIGHT, cores=16)
    assert plan.gpus == [["0", "1", "2"], ["3", "4", "5"]]
    assert plan.unused == ["6", "7"]
    assert plan.describe().endswith("· GPU 6,7 unused")


def test_nvidia_smi_numbering_sets_pci_bus_order():
    plan = make_plan("auto", 1, ["0", "1"], cores=4, pci_order=True)
    assert plan.env(0) == {"CUDA_VISIBLE_DEVICES": "0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def test_explicit_workers_share_gpu_groups_round_robin_and_trials_left_cap_them():
    plan = make_plan(3, 2, ["0", "1", "2", "3"], cores=12)
    assert plan.gpus == [["0", "1"], ["2", "3"], ["0", "1"]] and plan.threads == 4
    assert make_plan("auto", 1, EIGHT, cores=8, limit=2).gpus == [["0"], ["1"]]
    assert make_plan("auto", 1, EIGHT, cores=8, limit=2).unused == EIGHT[2:]


def test_cpu_machine_one_worker_per_two_cores_for_each_process_of_a_trial():
    plan = make_plan("auto", 1, [], cores=2)
    assert plan.workers == 1 and plan.threads == 2 and plan.env(0) == {}
    assert plan.describe() == "plan: 1 worker on CPU, 2 threads each"
    assert make_plan("auto", 1, [], cores=16).describe() == "plan: 8 workers on CPU, 2 threads each"
    two = make_plan("auto", 2, [], cores=16)        # trainer=ddp_cpu: 2 processes a trial
    assert two.workers == 4 and two.threads == 4      # per worker: its 2-process trials get 2 each
    assert two.describe() == "plan: 4 workers on CPU, 2 processes a trial, 2 threads each"
    assert make_plan(2, 1, [], cores=2).describe() == "plan: 2 workers on CPU, 1 thread each"
    assert auto_workers([], cores=1) == 1 and auto_workers([], cores=3, devices_per_trial=2) == 1


def test_parse_visible():
    assert parse_visible(None) is None
    assert parse_visible("") == []
    assert parse_visible("-1") == []
    assert parse_visible("0, 2,-1,3") == ["0", "2"]          # CUDA stops at the first invalid id
    assert parse_visible("GPU-8f2a,GPU-11c0") == ["GPU-8f2a", "GPU-11c0"]


@pytest.mark.parametrize("k, gpus, devices, message", [
    (3, ["0", "1"], -1, "sweep.devices_per_trial=3: this machine has 2 visible GPUs (0,1); use at most 2"),
    (2, EIGHT, 1, "sweep.devices_per_trial=2 but trainer.devices=1"),
    (1, EIGHT, 2, "trainer.devices=2: each worker sees only sweep.devices_per_trial=1 GPU"),
])
def test_bad_combinations_on_a_gpu_machine(k, gpus, devices, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check(k, gpus, devices)


@pytest.mark.parametrize("k, gpus, devices, slices", [
    (2, EIGHT, -1, [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"]]),   # trainer=ddp: every GPU the worker sees
    (2, EIGHT, 2, [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"]]),
    (2, EIGHT, "auto", [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"]]),
    (3, ["0", "1", "2"], 3, [["0", "1", "2"]]),
    (4, [], 1, []),               # CPU machine: devices_per_trial only sets the worker count
])
def test_good_combinations_pass_and_give_each_worker_its_gpus(k, gpus, devices, slices):
    assert check(k, gpus, devices) is None
    plan = make_plan("auto", k, gpus, cores=32)
    assert plan.gpus == slices
    assert plan.workers == (len(slices) or 32 // (2 * k))


SMOKE = ("sweep=digits_cnn", "trainer=smoke", "sweep.n_trials=2")
AUTO_HELP = "must be an integer of at least 1, or auto (one per devices_per_trial GPUs; on CPU one per 2 cores)"


def test_sweep_workers_auto_prints_the_plan_and_runs_on_cpu(tmp_path):
    done = run_cli("sweep", *SMOKE, "sweep.workers=auto", cwd=tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    cores = os.cpu_count() or 1
    workers = min(2, max(1, cores // 2))          # auto on CPU, capped by the 2 trials to run
    threads = max(1, cores // workers)
    plan = [line for line in done.stdout.splitlines() if line.startswith("plan: ")]
    assert plan == [f"plan: {workers} worker{'s' * (workers > 1)} on CPU, {threads} thread{'s' * (threads > 1)} each"]
    assert f"{workers} worker(s)" in done.stdout
    found = re.search(r"study digits_cnn: (\d+) complete, (\d+) pruned, 0 failed", done.stdout)
    assert found and int(found[1]) + int(found[2]) == 2, done.stdout


@pytest.mark.parametrize("args, message", [
    (("sweep.devices_per_trial=0",),
     "sweep.devices_per_trial=0: must be an integer of at least 1 (the GPUs each trial runs on)"),
    (("sweep.workers=many",), "sweep.workers='many' is not valid: expected an integer or auto (default 1)"),
    (("sweep.workers=0",), "sweep.workers=0: " + AUTO_HELP),
    # A GPU machine seen through CUDA_VISIBLE_DEVICES: a trial cannot have more GPUs than there are.
    (("sweep.devices_per_trial=3", "trainer=ddp", "CUDA_VISIBLE_DEVICES=0,1"),
     "sweep.devices_per_trial=3: this machine has 2 visible GPUs (0,1); use at most 2"),
])
def test_bad_placement_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, message):
    env = {"CUDA_VISIBLE_DEVICES": ""}
    env.update(a.split("=", 1) for a in args if a.startswith("CUDA_"))
    done = run_cli("sweep", *SMOKE, *(a for a in args if not a.startswith("CUDA_")), cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [f"sweeplab: error: {message}"]
    assert list(tmp_path.iterdir()) == []
