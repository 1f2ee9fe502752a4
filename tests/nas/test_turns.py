"""Timing and computing take turns across real processes (``nas.turns``): flock on real files.

Each check records, at the moment one side gets in, whether the other side had already left; a
side announces that it leaves while it still holds its turn, so the checks hold whatever the timing.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time

import pytest

from nas.turns import TURNSTILE, computing, measuring

SPAWN = multiprocessing.get_context("spawn")
WAIT_S = 120  # generous: only a broken lock makes a check wait this long


def _hold(kind: str, inside, release, leaving) -> None:
    with (measuring() if kind == "measuring" else computing()):
        inside.set()
        release.wait(WAIT_S)
        leaving.set()  # still held: whoever gets in next must see this


def _held_by_another(path, within_s: float) -> bool:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            time.sleep(0.01)
        return False
    finally:
        os.close(descriptor)


def _enter_and_see(kind: str, other_leaving, seen) -> None:
    with (measuring() if kind == "measuring" else computing()):
        seen.value = 1 if other_leaving.is_set() else 0


def _pieces(started, stop, seen_measuring, measuring_now) -> None:
    """Short pieces of work back to back, as a training loop; count those begun while a measurement held."""
    while not stop.is_set():
        with computing():
            started.set()
            if measuring_now.value:
                with seen_measuring.get_lock():
                    seen_measuring.value += 1
            time.sleep(0.005)


@pytest.mark.parametrize("holder, waiter", [("computing", measuring), ("measuring", computing)])
def test_one_side_gets_in_only_after_the_other_process_left(holder, waiter):
    inside, release, leaving = SPAWN.Event(), SPAWN.Event(), SPAWN.Event()
    process = SPAWN.Process(target=_hold, args=(holder, inside, release, leaving))
    process.start()
    try:
        assert inside.wait(WAIT_S)
        seen: list[bool] = []

        def enter() -> None:
            with waiter():
                seen.append(leaving.is_set())

        thread = threading.Thread(target=enter)
        thread.start()
        time.sleep(0.2)  # give a broken lock the chance to let it in early
        release.set()
        thread.join(WAIT_S)
        assert seen == [True]
    finally:
        release.set()
        process.join(WAIT_S)
    assert process.exitcode == 0


def test_a_waiting_measurement_keeps_new_steps_out_though_they_could_share_with_the_step_under_way():
    """Steps share the machine with each other; once a measurement waits, a new step waits behind
    it, or steps on two cores, one after the other, could keep it waiting for good."""
    inside, release, leaving = SPAWN.Event(), SPAWN.Event(), SPAWN.Event()
    step = SPAWN.Process(target=_hold, args=("computing", inside, release, leaving))
    step.start()
    measured_leaving, seen = SPAWN.Event(), SPAWN.Value("i", -1)
    late_step = SPAWN.Process(target=_enter_and_see, args=("computing", measured_leaving, seen))
    try:
        assert inside.wait(WAIT_S)

        def measure() -> None:
            with measuring():
                measured_leaving.set()

        measurement = threading.Thread(target=measure)
        measurement.start()
        assert _held_by_another(TURNSTILE, within_s=10)  # the waiting measurement holds the turnstile
        late_step.start()  # the first step still holds the machine, shared
        time.sleep(0.2)  # give a broken lock the chance to let it in early
        release.set()
        measurement.join(WAIT_S)
        late_step.join(WAIT_S)
        assert seen.value == 1  # the late step got in only after the measurement
    finally:
        release.set()
        step.join(WAIT_S)
    assert step.exitcode == 0 and late_step.exitcode == 0


def test_steps_back_to_back_on_two_processes_neither_shut_a_measurement_out_nor_run_inside_it():
    stop = SPAWN.Event()
    seen_measuring, measuring_now = SPAWN.Value("i", 0), SPAWN.Value("i", 0)
    trainers = [(started := SPAWN.Event(), SPAWN.Process(target=_pieces, args=(started, stop, seen_measuring, measuring_now)))
                for _ in range(2)]
    for _, process in trainers:
        process.start()
    try:
        assert all(started.wait(WAIT_S) for started, _ in trainers)  # both are stepping now
        held = []

        def measure() -> None:
            for _ in range(5):
                with measuring():
                    measuring_now.value = 1
                    time.sleep(0.05)
                    measuring_now.value = 0
                held.append(True)

        thread = threading.Thread(target=measure)
        thread.start()
        thread.join(WAIT_S)
        assert held == [True] * 5  # every measurement got the machine
        assert seen_measuring.value == 0  # and no piece of work began while one held it
    finally:
        stop.set()
        for _, process in trainers:
            process.join(WAIT_S)
    assert [process.exitcode for _, process in trainers] == [0, 0]


def test_within_one_thread_a_measurement_s_own_work_takes_no_turn_and_a_step_cannot_measure():
    with measuring(), computing(), measuring():  # would wait for itself if it took the locks again
        pass
    with computing(), pytest.raises(RuntimeError, match="inside a computing"):
        with measuring():
            pass
