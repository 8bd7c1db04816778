"""MLS benchmark: this implementation against mls-rs (native, through its UniFFI bindings) on the
same operations, for groups of 10, 100 and 1000 members.

Operations, per implementation: create an Add commit (and apply it; without an UpdatePath, as
mls-rs does for add-only commits), process it as another member;
the same for a Remove commit; protect and unprotect a 1 KiB application message. Each figure is the
median over ROUNDS rounds (every round advances the group, as in real use). mls-rs figures are
measured only when the ``mls-interop`` extra is installed; the ratio column is ours / mls-rs.

    .venv/bin/python benchmarks/bench_mls.py [sizes...] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reference_peer.mls import Group, add_proposal, basic_credential, make_key_package, remove_proposal  # noqa: E402

try:
    import mls_rs_uniffi as mls_rs
except ImportError:  # the figures for mls-rs are then omitted
    mls_rs = None

PAYLOAD = bytes(1024)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


# -- this implementation ---------------------------------------------------------------------------


def bench_python(size: int, rounds: int) -> dict[str, float]:
    alice = Group.create(1, basic_credential(b"alice"))
    bundles = [make_key_package(1, basic_credential(b"m%d" % i)) for i in range(size - 1)]
    out = alice.commit([add_proposal(b.key_package) for b in bundles[1:]] if size > 2 else [])
    alice.merge_pending_commit()
    # The observer joins last, so that it sees the full tree from a Welcome.
    out = alice.commit([add_proposal(bundles[0].key_package)])
    alice.merge_pending_commit()
    bob = Group.join(out.welcome, bundles[0])
    times: dict[str, list[float]] = {k: [] for k in ("add_create", "add_process", "remove_create", "remove_process", "protect", "unprotect")}
    for r in range(rounds):
        kp = make_key_package(1, basic_credential(b"new%d" % r))
        t, out = timed(lambda kp=kp: (alice.commit([add_proposal(kp.key_package)], force_path=False), alice.merge_pending_commit())[0])
        times["add_create"].append(t)
        t, _ = timed(lambda out=out: bob.process(out.commit))
        times["add_process"].append(t)
        leaf = next(i for i, leaf in alice.members() if leaf.credential.identity == b"new%d" % r)
        t, out = timed(lambda leaf=leaf: (alice.commit([remove_proposal(leaf)]), alice.merge_pending_commit())[0])
        times["remove_create"].append(t)
        t, _ = timed(lambda out=out: bob.process(out.commit))
        times["remove_process"].append(t)
        t, message = timed(lambda: alice.protect(PAYLOAD))
        times["protect"].append(t)
        t, _ = timed(lambda message=message: bob.process(message))
        times["unprotect"].append(t)
    return {k: statistics.median(v) for k, v in times.items()}


# -- mls-rs ------------------------------------------------------------------------------------------


def rs_client(name: bytes):
    keys = mls_rs.generate_signature_keypair(mls_rs.CipherSuite.CURVE25519_AES128)
    return mls_rs.Client(name, keys, mls_rs.client_config_default())


def bench_mls_rs(size: int, rounds: int) -> dict[str, float]:
    alice = rs_client(b"alice")
    group = alice.create_group(None)
    others = [rs_client(b"m%d" % i) for i in range(size - 1)]
    if size > 2:
        out = group.add_members([c.generate_key_package_message() for c in others[1:]])
        group.process_incoming_message(out.commit_message)
    bob_client = others[0]
    out = group.add_members([bob_client.generate_key_package_message()])
    group.process_incoming_message(out.commit_message)
    bob = bob_client.join_group(out.ratchet_tree, out.welcome_message).group
    times: dict[str, list[float]] = {k: [] for k in ("add_create", "add_process", "remove_create", "remove_process", "protect", "unprotect")}
    for r in range(rounds):
        newcomer = rs_client(b"new%d" % r)
        kp = newcomer.generate_key_package_message()

        def add(kp=kp):
            o = group.add_members([kp])
            group.process_incoming_message(o.commit_message)
            return o

        t, out = timed(add)
        times["add_create"].append(t)
        t, _ = timed(lambda out=out: bob.process_incoming_message(out.commit_message))
        times["add_process"].append(t)
        identity = newcomer.signing_identity()

        def remove(identity=identity):
            o = group.remove_members([identity])
            group.process_incoming_message(o.commit_message)
            return o

        t, out = timed(remove)
        times["remove_create"].append(t)
        t, _ = timed(lambda out=out: bob.process_incoming_message(out.commit_message))
        times["remove_process"].append(t)
        t, message = timed(lambda: group.encrypt_application_message(PAYLOAD))
        times["protect"].append(t)
        t, _ = timed(lambda message=message: bob.process_incoming_message(message))
        times["unprotect"].append(t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"MLS benchmark, cipher suite 0x0001, median of {args.rounds} rounds; times in ms")
    if mls_rs is None:
        print("mls-rs not installed (pip install -e '.[mls-interop]'): only this implementation is measured")
    print(f"{'members':>7} {'operation':<15} {'python':>10} {'mls-rs':>10} {'ratio':>8}")
    for size in args.sizes:
        py = bench_python(size, args.rounds)
        rs = bench_mls_rs(size, args.rounds) if mls_rs is not None else None
        for op, value in py.items():
            if rs is not None:
                print(f"{size:>7} {op:<15} {value * 1e3:>10.2f} {rs[op] * 1e3:>10.3f} {value / rs[op]:>7.1f}x")
            else:
                print(f"{size:>7} {op:<15} {value * 1e3:>10.2f} {'-':>10} {'-':>8}")


if __name__ == "__main__":
    main()
