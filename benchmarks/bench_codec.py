"""Codec throughput: encode and decode MB/s per wire struct, and the 1 MiB FanoutMessage case.

Figures, not pass/fail (``make bench``). The large-payload goal: decoding a FanoutMessage whose
PrivateMessage ciphertext is 1 MiB stays within 3x of a bare hand-written reader (memoryview
slices + int.from_bytes over the same fields, small fields copied to bytes as the codec does, the
ciphertext left as a view), measured in the same run.

Per-struct values are generated from the codec descriptions (hypothesis, derandomized): for each
struct, the largest of a few generated values, so every struct discovered in the wire package is
measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from reference_peer.wire.codec import Struct  # noqa: E402
from reference_peer.wire.mimi import FanoutMessage, Frank  # noqa: E402
from reference_peer.wire.mls import ContentType, MLSMessage, PrivateMessage, ProtocolVersion, WireFormat  # noqa: E402
from reference_peer.wire.strategies import values_of, wire_structs  # noqa: E402

MIB = 1 << 20


def best_time(fn: Callable[[], Any], *, min_time: float = 0.1, repeats: int = 5) -> float:
    """Seconds per call: the best of ``repeats`` batches, each batch running at least ``min_time``."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time / 4:
            break
        calls *= 2
    calls = max(1, int(calls * min_time / max(elapsed, 1e-9)))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def _batch_time(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def sample_value(cls: type[Struct], examples: int = 30) -> Struct:
    """The largest of a few derandomized generated values of ``cls``."""
    found: list[Struct] = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(values_of(cls, max_depth=8))
    def collect(value: Struct) -> None:
        found.append(value)

    collect()
    return max(found, key=lambda v: len(v.encode()))


def big_fanout(payload_size: int = MIB) -> FanoutMessage:
    return FanoutMessage(
        timestamp=1_750_000_000_000,
        message=MLSMessage(
            version=ProtocolVersion.mls10,
            wire_format=WireFormat.mls_private_message,
            private_message=PrivateMessage(
                group_id=b"group-0123456789abcdef",
                epoch=42,
                content_type=ContentType.application,
                authenticated_data=b"\x00\x01" + b"a" * 30,
                encrypted_sender_data=b"s" * 40,
                ciphertext=bytes(payload_size),
            ),
        ),
        frank=Frank(server_frank=bytes(32), franking_signature_ciphersuite=1, franking_integrity_signature=b"f" * 64),
    )


def baseline_fanout_reader(data: bytes) -> tuple:
    """Hand-written reader of the same fields: the floor for Python (no objects, no enum checks)."""
    buf = memoryview(data).toreadonly()
    pos = 0
    from_bytes = int.from_bytes

    def varint(pos: int) -> tuple[int, int]:
        first = buf[pos]
        prefix = first >> 6
        if prefix == 0:
            return first, pos + 1
        if prefix == 1:
            return from_bytes(buf[pos : pos + 2], "big") & 0x3FFF, pos + 2
        return from_bytes(buf[pos : pos + 4], "big") & 0x3FFFFFFF, pos + 4

    timestamp = from_bytes(buf[pos : pos + 8], "big")
    pos += 8
    version = from_bytes(buf[pos : pos + 2], "big")
    wire_format = from_bytes(buf[pos + 2 : pos + 4], "big")
    pos += 4
    n, pos = varint(pos)
    group_id = bytes(buf[pos : pos + n])
    pos += n
    epoch = from_bytes(buf[pos : pos + 8], "big")
    content_type = buf[pos + 8]
    pos += 9
    n, pos = varint(pos)
    authenticated_data = bytes(buf[pos : pos + n])
    pos += n
    n, pos = varint(pos)
    encrypted_sender_data = bytes(buf[pos : pos + n])
    pos += n
    n, pos = varint(pos)
    ciphertext = buf[pos : pos + n]  # zero copy, like opaque_view
    pos += n
    present = buf[pos]
    pos += 1
    frank = None
    if present:
        server_frank = bytes(buf[pos : pos + 32])
        suite = from_bytes(buf[pos + 32 : pos + 34], "big")
        pos += 34
        n, pos = varint(pos)
        signature = bytes(buf[pos : pos + n])
        pos += n
        frank = (server_frank, suite, signature)
    if pos != len(buf):
        raise ValueError("trailing bytes")
    return (timestamp, version, wire_format, group_id, epoch, content_type, authenticated_data,
            encrypted_sender_data, ciphertext, frank)  # fmt: skip


def mb_per_s(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def bench_large(payload_size: int = MIB) -> float:
    value = big_fanout(payload_size)
    data = value.encode()
    decoded = FanoutMessage.decode(data)
    assert decoded == value and decoded.message.private_message.ciphertext.obj is data
    assert bytes(baseline_fanout_reader(data)[8]) == value.message.private_message.ciphertext

    # Paired short rounds (decode, then baseline, each a few ms): load on a shared machine drifts
    # more slowly than that, so each round's ratio compares like with like; report the median.
    decode_times, baseline_times, ratios = [], [], []
    for _ in range(60):
        decode_times.append(_batch_time(lambda: FanoutMessage.decode(data), 300))
        baseline_times.append(_batch_time(lambda: baseline_fanout_reader(data), 300))
        ratios.append(decode_times[-1] / baseline_times[-1])
    t_decode, t_baseline = min(decode_times), min(baseline_times)
    ratio = statistics.median(ratios)
    t_encode = best_time(value.encode)
    print(f"\nFanoutMessage with a {payload_size // 1024} KiB PrivateMessage ciphertext ({len(data)} bytes):")
    print(f"  decode   {t_decode * 1e6:9.2f} us  {mb_per_s(len(data), t_decode):12.0f} MB/s")
    print(f"  baseline {t_baseline * 1e6:9.2f} us  {mb_per_s(len(data), t_baseline):12.0f} MB/s  (memoryview + int.from_bytes)")
    print(f"  encode   {t_encode * 1e6:9.2f} us  {mb_per_s(len(data), t_encode):12.0f} MB/s")
    print(f"  decode / baseline = {ratio:.2f}x median of {len(ratios)} paired rounds "
          f"(quartiles {statistics.quantiles(ratios, n=4)[0]:.2f}-{statistics.quantiles(ratios, n=4)[2]:.2f}; goal: <= 3x)")
    return ratio


def bench_structs(pattern: str | None) -> None:
    print(f"{'struct':<36}{'bytes':>7}{'encode MB/s':>13}{'decode MB/s':>13}{'decode us':>11}")
    for cls in wire_structs():
        if pattern and pattern.lower() not in cls.__name__.lower():
            continue
        value = sample_value(cls)
        data = value.encode()
        t_encode = best_time(value.encode, min_time=0.02, repeats=3)
        t_decode = best_time(lambda data=data, cls=cls: cls.decode(data), min_time=0.02, repeats=3)
        print(
            f"{cls.__module__.rsplit('.', 1)[1] + '.' + cls.__name__:<36}{len(data):>7}"
            f"{mb_per_s(len(data), t_encode):>13.1f}{mb_per_s(len(data), t_decode):>13.1f}{t_decode * 1e6:>11.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="only structs whose name contains this")
    parser.add_argument("--large-only", action="store_true", help="only the 1 MiB FanoutMessage case")
    args = parser.parse_args(argv)
    if not args.large_only:
        bench_structs(args.only)
    bench_large()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
