"""Workflows the check must pass: the SDK's deterministic APIs, local state, vetted lines."""

import asyncio
import random
import time
from datetime import timedelta

from temporalio import workflow

from workflowcheck_corpus.helpers import pure


@workflow.defn
class GoodWorkflow:
    def __init__(self) -> None:
        self._log: list[str] = []

    @workflow.run
    async def run(self, n: int) -> str:
        # Local names that shadow a builtin or a module name are the workflow's own.
        input = {"n": n}
        requests = [input["n"]]
        requests.append(n)
        rng: random.Random = workflow.random()
        items: list[int] = [rng.randint(1, 6)]
        items.append(pure(n))
        self._log.append("started")
        await asyncio.sleep(1)
        await workflow.sleep(timedelta(seconds=1))
        at = workflow.now()
        dice = workflow.random().randint(1, 6)
        key = workflow.uuid4()
        # determinism-ok: the duration is logged only, it never decides a branch
        started = time.perf_counter()
        workflow.logger.info("took %s", time.perf_counter() - started)  # determinism-ok: logged
        return f"{at}{dice}{key}{items}"
