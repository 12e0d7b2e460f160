"""Where independent compile jobs run: a local process pool (default) or a Ray cluster.

Jobs return their results by value (a compiled module's files as bytes), so a Ray worker on another machine
needs no shared disk, only edgeq installed. Measurement never goes through here: it stays serial on the
device, in the calling process.
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TypeVar

from edgeq.errors import EdgeqError

EXECUTORS = ("local", "ray")
J = TypeVar("J")
R = TypeVar("R")


def check(executor: str) -> None:
    if executor not in EXECUTORS:
        raise EdgeqError(f"unknown executor {executor!r}", f"use one of {', '.join(EXECUTORS)}")


def run_all(fn: Callable[[J], R], items: Iterable[J], *, executor: str = "local", jobs: int = 2) -> Iterator[tuple[J, R]]:
    """(item, fn(item)) in the order jobs finish. fn must be a module-level function (it is pickled)."""
    check(executor)
    items = list(items)
    if executor == "ray":
        yield from _ray(fn, items)
    elif jobs > 1 and len(items) > 1:
        ctx = multiprocessing.get_context("spawn")   # fork after torch's thread pools started is not safe
        with ProcessPoolExecutor(max_workers=min(jobs, len(items)), mp_context=ctx) as pool:
            futures = {pool.submit(fn, item): item for item in items}
            for future in as_completed(futures):
                yield futures[future], future.result()
    else:
        for item in items:
            yield item, fn(item)


def _ray(fn: Callable[[J], R], items: list[J]) -> Iterator[tuple[J, R]]:
    """On the cluster at $RAY_ADDRESS, or on a local one started (and stopped) here when there is none."""
    try:
        import ray
    except ImportError:
        raise EdgeqError("--executor ray needs the ray package", "pip install 'edgeq[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        pending = {remote.remote(item): item for item in items}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                yield pending.pop(ref), ray.get(ref)
    finally:
        if started:
            ray.shutdown()
