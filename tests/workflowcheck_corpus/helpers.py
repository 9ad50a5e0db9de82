"""Service code that workflow code calls: the check follows calls into it."""

import datetime as dt
import os
from dataclasses import dataclass, field
from datetime import datetime

SEEN: dict[str, int] = {}
LIMIT = 10


def stamp(name: str) -> str:
    return f"{name}@{dt.datetime.now().isoformat()}"  # expect: datetime.datetime.now


def remember(key: str) -> None:
    SEEN[key] = LIMIT  # expect: workflowcheck_corpus.helpers.SEEN


def region() -> str:
    return deeper()


def deeper() -> str:
    return os.environ.get("REGION", "eu")  # expect: os.environ.get


def pure(x: int) -> int:
    return x * LIMIT


def never_called_from_a_workflow() -> float:
    import time

    return time.time()


@dataclass
class Stamped:
    value: int
    at: datetime = field(default_factory=datetime.now)  # expect: datetime.datetime.now
