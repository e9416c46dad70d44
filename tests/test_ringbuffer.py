"""Property tests of the lock-free SPSC ring buffer between the C audio callback and the
processing thread (PortAudio's PaUtilRingBuffer via rtmixer), used exactly as the engine uses it:
``write`` blocks of frames, ``readinto`` fixed blocks, ``advance_read_index`` to drop frames."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
import rtmixer
from hypothesis import given, settings
from hypothesis import strategies as st

CHANNELS = 2
FRAME_BYTES = 4 * CHANNELS

operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 300)),
        st.tuples(st.just("read"), st.integers(0, 300)),
        st.tuples(st.just("drop"), st.integers(0, 300)),
    ),
    max_size=60,
)


@given(operations, st.sampled_from([64, 256, 1024]))
@settings(max_examples=200, deadline=None)
def test_ring_buffer_is_a_fifo_that_never_overfills(ops, size):
    ring = rtmixer.RingBuffer(FRAME_BYTES, size)
    model: deque[float] = deque()
    counter = 0.0
    for op, n in ops:
        if op == "write":
            data = (counter + np.arange(n, dtype=np.float32))[:, None].repeat(CHANNELS, 1)
            written = ring.write(data)
            assert written == min(n, size - len(model))  # partial when full, never overwrites
            model.extend(data[:written, 0])
            counter += n
        elif op == "read":
            out = np.full((n, CHANNELS), -1.0, dtype=np.float32)
            got = ring.readinto(out)
            assert got == min(n, len(model))
            expected = [model.popleft() for _ in range(got)]
            np.testing.assert_array_equal(out[:got, 0], expected)
            np.testing.assert_array_equal(out[:got, 1], expected)
        else:
            dropped = min(n, ring.read_available)
            ring.advance_read_index(dropped)  # returns the new read index, not a count
            for _ in range(dropped):
                model.popleft()
        assert ring.read_available == len(model)
        assert ring.write_available == size - len(model)


def test_one_producer_one_consumer_threads_lose_nothing():
    """A producer thread writing odd-sized chunks and a consumer reading fixed blocks agree on
    every frame, in order, with no lock."""
    ring = rtmixer.RingBuffer(FRAME_BYTES, 512)
    total = 200_000
    received = np.zeros(total, dtype=np.float32)

    def produce():
        pos = 0
        rng = np.random.default_rng(1)
        while pos < total:
            n = min(int(rng.integers(1, 200)), total - pos)
            data = np.arange(pos, pos + n, dtype=np.float32)[:, None].repeat(CHANNELS, 1)
            done = 0
            while done < n:
                done += ring.write(data[done:])
            pos += n

    producer = threading.Thread(target=produce)
    producer.start()
    block = np.zeros((128, CHANNELS), dtype=np.float32)
    pos = 0
    while pos < total:
        if ring.read_available >= min(128, total - pos):
            got = ring.readinto(block[: min(128, total - pos)])
            received[pos : pos + got] = block[:got, 0]
            pos += got
    producer.join()
    np.testing.assert_array_equal(received, np.arange(total, dtype=np.float32))
