"""Side-by-side CPU gradient batches: ordering, splitting, thread counts, cancelling."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from napari_ctinterp.runtime.parallel import MIN_ROWS_PER_WORKER, cpu_workers, intra_op_threads, ordered_map, split_rows


def test_split_rows_even_batches_in_multiples_of_the_workers():
    rows = np.arange(25)
    parts = split_rows(rows, 7, 2)
    assert [len(p) for p in parts] == [7, 6, 6, 6]
    assert np.array_equal(np.concatenate(parts), rows)
    assert [len(p) for p in split_rows(rows, 7, 1)] == [7, 6, 6, 6]
    assert [len(p) for p in split_rows(np.arange(5), 16, 2)] == [3, 2]
    assert [len(p) for p in split_rows(np.arange(1), 16, 2)] == [1]
    assert split_rows(np.arange(0), 4, 2) == []


def test_workers_only_on_cpu_with_threads_and_rows():
    with intra_op_threads(2):
        assert cpu_workers(torch.device("cpu"), 2 * MIN_ROWS_PER_WORKER) == 2
        assert cpu_workers(torch.device("cpu"), 2 * MIN_ROWS_PER_WORKER - 1) == 1
        assert cpu_workers(torch.device("cuda"), 1000) == 1
    with intra_op_threads(1):
        assert cpu_workers(torch.device("cpu"), 1000) == 1


def test_intra_op_threads_is_restored_even_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), intra_op_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_overlapping_thread_settings_restore_the_original_count_in_any_order():
    before = torch.get_num_threads()
    a, b = intra_op_threads(1), intra_op_threads(1)
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)  # the first one out is not the last one in
    assert torch.get_num_threads() == 1
    b.__exit__(None, None, None)
    assert torch.get_num_threads() == before


def test_ordered_map_keeps_input_order_and_raises_errors():
    def slow_first(i):
        time.sleep(0.05 if i == 0 else 0.0)
        return i * i

    assert list(ordered_map(slow_first, range(9), 2)) == [i * i for i in range(9)]
    assert list(ordered_map(slow_first, range(9), 1)) == [i * i for i in range(9)]

    def bad(i):
        if i == 3:
            raise ValueError("bad item")
        return i

    with pytest.raises(ValueError, match="bad item"):
        list(ordered_map(bad, range(6), 2))


def test_closing_early_leaves_nothing_running():
    started, running = [], threading.Event()

    def work(i):
        started.append(i)
        running.set()
        time.sleep(0.02)
        return i

    before = set(threading.enumerate())
    gen = ordered_map(work, range(100), 2)
    assert next(gen) == 0
    gen.close()
    n = len(started)
    time.sleep(0.1)
    assert len(started) == n <= 4  # at most the few already submitted, nothing after the close
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("ctinterp-grad")]
