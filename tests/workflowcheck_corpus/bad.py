"""Workflows that make calls the sandbox refuses, directly, through aliases and helpers."""

import random as rnd
import socket
import threading
import time
import uuid
from datetime import timedelta
from time import monotonic as now

from temporalio import activity, workflow

from workflowcheck_corpus import helpers
from workflowcheck_corpus.helpers import Stamped, region, remember, stamp

HISTORY: list[str] = []


@activity.defn
async def slow() -> float:
    # An activity may: workflow code passes it to the SDK, it never calls it.
    return time.time()


@workflow.defn
class BadWorkflow:
    @workflow.run
    async def run(self) -> str:
        started = time.time()  # expect: time.time
        tick = now()  # expect: time.monotonic
        dice = rnd.randint(1, 6)  # expect: random.randint
        key = uuid.uuid4()  # expect: uuid.uuid4
        time.sleep(1)  # expect: time.sleep
        with open("/etc/hostname") as f:  # expect: builtins.open
            f.read()
        socket.gethostname()  # expect: socket.gethostname
        threading.Thread(target=print).start()  # expect: threading.Thread
        HISTORY.append("run")  # expect: workflowcheck_corpus.bad.HISTORY.append
        self.count()
        remember("x")
        helpers.SEEN.clear()  # expect: workflowcheck_corpus.helpers.SEEN.clear
        Stamped(1)
        await workflow.execute_activity(slow, start_to_close_timeout=timedelta(seconds=5))
        return f"{started}{tick}{dice}{key}{stamp('a')}{region()}{helpers.pure(2)}"

    def count(self) -> None:
        global HISTORY  # expect: HISTORY
        HISTORY = []

    @workflow.signal
    def poke(self) -> None:
        self._seed = rnd.random()  # expect: random.random
