"""The off-path runner: tasks run on one thread after the caller returned; a task already queued
under the same name, or beyond the limit, is dropped (each is idempotent and will be asked for
again); a failing task (logged) does not stop the ones after it."""

from __future__ import annotations

import threading

from mantle_gateway.core.offpath import OffPath


def test_tasks_run_in_order_off_the_callers_thread() -> None:
    runner = OffPath()
    gate, done = threading.Event(), threading.Event()
    ran: list[str] = []

    def first() -> None:
        gate.wait(5)
        ran.append(threading.current_thread().name)

    assert runner.submit("a", first)

    def second() -> None:
        ran.append("b")
        done.set()

    assert runner.submit("b", second)
    assert ran == [], "the caller did not wait"
    gate.set()
    assert done.wait(5)
    assert ran == ["offpath", "b"]


def test_same_name_while_queued_and_beyond_the_limit_are_dropped() -> None:
    runner = OffPath(limit=2)
    gate, second_ran = threading.Event(), threading.Event()

    def blocked() -> None:
        gate.wait(5)

    assert runner.submit("sweep k", blocked)
    assert not runner.submit("sweep k", lambda: None), "the same sweep is already queued"
    assert runner.submit("release r", second_ran.set)
    assert not runner.submit("release s", lambda: None), "two queued: the limit"
    gate.set()
    assert second_ran.wait(5)
    ran = threading.Event()
    end = threading.Event()
    for _ in range(100):  # the name is freed just after its task returns
        if runner.submit("sweep k", ran.set):
            break
        end.wait(0.01)
    assert ran.wait(5), "the name is free once its task ran"


def test_a_failing_task_does_not_stop_the_next_one() -> None:
    runner = OffPath()
    done = threading.Event()

    def broken() -> None:
        raise RuntimeError("boom")

    runner.submit("broken", broken)
    runner.submit("next", done.set)
    assert done.wait(5)
