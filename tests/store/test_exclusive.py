"""One holder at a time across processes, and a holder that dies hands over."""

from __future__ import annotations

import subprocess
import sys
import time

from convoscope.store.exclusive import ExclusiveLock
from convoscope.store.metadata import MetadataStore


def test_one_holder_at_a_time_and_the_next_takes_over_on_release(metadata_url: str) -> None:
    first, second = MetadataStore(metadata_url), MetadataStore(metadata_url)
    mine, theirs = ExclusiveLock(first, "alerts"), ExclusiveLock(second, "alerts")
    other = ExclusiveLock(second, "retention")
    try:
        assert mine.try_acquire() and mine.still_held()
        if first.backend == "sqlite":
            assert theirs.try_acquire()  # one process per SQLite database: it always holds its locks
            return
        assert not theirs.try_acquire()
        assert other.try_acquire()  # another name is another lock
        mine.release()
        assert theirs.try_acquire()
        assert not mine.try_acquire()
    finally:
        for lock in (mine, theirs, other):
            lock.release()
        first.close()
        second.close()


def test_a_killed_holder_loses_the_lock(metadata_url: str) -> None:
    if not metadata_url.startswith("postgresql"):
        return  # SQLite has one process: there is no other holder to lose it to
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from convoscope.store.exclusive import ExclusiveLock\n"
            "from convoscope.store.metadata import MetadataStore\n"
            "assert ExclusiveLock(MetadataStore(sys.argv[1]), 'alerts').try_acquire()\n"
            "print('held', flush=True)\n"
            "time.sleep(600)\n",
            metadata_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    meta = MetadataStore(metadata_url)
    waiting = ExclusiveLock(meta, "alerts")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not waiting.try_acquire()
        holder.kill()
        holder.wait()
        deadline = time.monotonic() + 10
        while not waiting.try_acquire():
            assert time.monotonic() < deadline, "the lock outlived its killed holder"
            time.sleep(0.1)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
        waiting.release()
        meta.close()
