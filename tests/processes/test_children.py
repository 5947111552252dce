"""The suite's own rule that no test leaves a process running (tests/children.py, and its fixture in
tests/conftest.py): a child left running is found, named and killed; one that ended is not."""

from __future__ import annotations

import signal
import subprocess
import sys

from ..children import Watch


def test_a_child_left_running_is_found_named_and_killed() -> None:
    watch = Watch()
    watch.before_test()
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        left = watch.after_test(grace=0.05)
        assert list(left) == [process.pid]
        assert "time.sleep(60)" in left[process.pid]
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_child_that_ended_is_not_reported() -> None:
    watch = Watch()
    watch.before_test()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert watch.after_test() == {}


def test_children_already_running_before_the_test_are_not_its_own() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        watch = Watch()
        watch.counted = -1  # as though started outside a test: the watch looks again before it
        watch.before_test()
        subprocess.run([sys.executable, "-c", "pass"], check=True)  # a start: the watch looks again
        assert watch.after_test(grace=0.05) == {}
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()
