"""The measuring child: whole networks are timed in one long-lived process that never trains, a
failure there fails the measurement (never the caller), and the child never outlives its parent."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.errors import MeasurementFailed
from nas.baselines import paper_network
from nas.latency import LatencySettings, measure_built, measure_network, random_networks
from nas.latency.isolated import CHILD_MAIN
from search_spaces import get_space

QUICK = LatencySettings(resolution=32, warmup=1, repeats=3, passes=2)
GONE_WITHIN_S = 60  # a deadline for a process to exit, not a timed figure
NETWORK = random_networks(get_space("tiny"), 1, 0)[0]


def measuring_children(pid: int) -> set[int]:
    """The measuring children of process ``pid`` (any thread's), from /proc."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                if CHILD_MAIN in Path(f"/proc/{child}/cmdline").read_bytes().decode().replace("\0", " "):
                    found.add(int(child))
            except FileNotFoundError:
                pass
    return found


def test_networks_are_timed_in_one_long_lived_child_process():
    first = measure_network(NETWORK, QUICK)
    children = measuring_children(os.getpid())
    second = measure_built(paper_network, {"name": "mobilenetv3_small_050"}, QUICK)
    assert len(children) == 1 and measuring_children(os.getpid()) == children
    for measured in (first, second):
        assert measured.runs == 6 and measured.latency_ms == min(measured.pass_ms)
        assert isinstance(measured.pass_ms, tuple) and len(measured.pass_ms) == 2


def test_a_network_the_child_cannot_build_fails_with_its_reason_and_the_child_stays():
    measure_network(NETWORK, QUICK)
    children = measuring_children(os.getpid())
    with pytest.raises(MeasurementFailed, match="could not time the network: KeyError: 'no-such-network'"):
        measure_built(paper_network, {"name": "no-such-network"}, QUICK)
    assert measure_network(NETWORK, QUICK).runs == 6
    assert measuring_children(os.getpid()) == children


def test_a_builder_the_child_cannot_import_is_refused_before_anything_is_sent():
    with pytest.raises(ValueError, match="not a module-level function"):
        measure_built(lambda: None, {}, QUICK)


def test_a_child_killed_between_measurements_fails_the_next_one_and_the_one_after_starts_afresh():
    measure_network(NETWORK, QUICK)
    (child,) = measuring_children(os.getpid())
    os.kill(child, signal.SIGKILL)
    with pytest.raises(MeasurementFailed, match=r"stopped \(exit code -9\)"):
        measure_network(NETWORK, QUICK)
    assert measure_network(NETWORK, QUICK).runs == 6
    after = measuring_children(os.getpid())
    assert len(after) == 1 and child not in after


MEASURING_FOREVER = """
from nas.latency import LatencySettings, measure_network, random_networks
from search_spaces import get_space
network = random_networks(get_space("tiny"), 1, 0)[0]
settings = LatencySettings(resolution=32, warmup=1, repeats=200, passes=3)
measure_network(network, settings)
print("measuring", flush=True)
while True:
    measure_network(network, settings)
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill -9 the parent", "Ctrl-C in the terminal"])
def test_the_child_never_outlives_its_parent(how):
    parent = subprocess.Popen([sys.executable, "-c", MEASURING_FOREVER], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)  # its own process group, as a terminal's foreground job
    try:
        assert parent.stdout.readline().strip() == "measuring"
        (child,) = measuring_children(parent.pid)
        if how.startswith("kill"):
            parent.kill()
        else:
            os.killpg(parent.pid, signal.SIGINT)  # the terminal sends it to the parent and the child alike
            assert parent.wait(GONE_WITHIN_S) != 0
        deadline = time.monotonic() + GONE_WITHIN_S
        while Path(f"/proc/{child}").exists() and b"Z" not in _state(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{child}").exists() or b"Z" in _state(child)
    finally:
        parent.kill()
        parent.wait()


def _state(pid: int) -> bytes:
    """The process's state letter from /proc (Z: exited, not yet reaped by its dead parent's reaper)."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return b"Z"
