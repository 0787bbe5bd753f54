"""Raw crypto costs measured in the same run as every other figure.

Every benchmark here reports its result next to the cost of the cryptography the
same work cannot avoid, so that "how much do we add on top" is a ratio measured
on one machine at one moment, not a guess.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

from ethcrawl.wire.crypto import (
    ecdh_x,
    generate_private_key,
    keccak256,
    pubkey_from_private,
    recover_pubkey,
    sign_recoverable,
)

__all__ = ["CryptoCost", "measure_crypto_cost", "per_second", "seconds_per_op"]


def seconds_per_op(
    fn: Callable[[], object],
    *,
    min_time: float = 0.5,
    batch: int = 100,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Best-of-three mean seconds per call of ``fn``, each round running >= min_time/3 of ``clock``.

    ``time.process_time`` counts only this process's CPU: what to compare with another process's CPU time
    (bench/crawl_bench.py's wait4 figures) on a machine others load, where wall time per call grows with the load.
    """
    best = float("inf")
    for _ in range(3):
        n = 0
        start = clock()
        while True:
            for _ in range(batch):
                fn()
            n += batch
            elapsed = clock() - start
            if elapsed >= min_time / 3:
                break
        best = min(best, elapsed / n)
    return best


def per_second(seconds: float) -> float:
    return 1.0 / seconds if seconds > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class CryptoCost:
    """Seconds per operation of each primitive."""

    sign: float
    recover: float
    ecdh: float
    keygen: float  # a new key pair (random scalar + one point multiplication)
    keccak_small: float  # one keccak256 over ~100 bytes

    def table(self) -> list[tuple[str, float]]:
        return [
            ("secp256k1 sign (recoverable)", self.sign),
            ("secp256k1 recover", self.recover),
            ("secp256k1 ECDH (x coordinate)", self.ecdh),
            ("secp256k1 key pair generation", self.keygen),
            ("keccak256 (100 bytes)", self.keccak_small),
        ]


def measure_crypto_cost(min_time: float = 0.5, clock: Callable[[], float] = time.perf_counter) -> CryptoCost:
    key = generate_private_key()
    other = pubkey_from_private(generate_private_key())
    msg = keccak256(b"ethcrawl")
    sig = sign_recoverable(key, msg)
    data = os.urandom(100)
    return CryptoCost(
        sign=seconds_per_op(lambda: sign_recoverable(key, msg), min_time=min_time, clock=clock),
        recover=seconds_per_op(lambda: recover_pubkey(sig, msg), min_time=min_time, clock=clock),
        ecdh=seconds_per_op(lambda: ecdh_x(key, other), min_time=min_time, clock=clock),
        keygen=seconds_per_op(lambda: pubkey_from_private(generate_private_key()), min_time=min_time, clock=clock),
        keccak_small=seconds_per_op(lambda: keccak256(data), min_time=min_time, clock=clock),
    )


if __name__ == "__main__":
    cost = measure_crypto_cost()
    for name, secs in cost.table():
        print(f"{name:34s} {secs * 1e6:9.1f} us  {per_second(secs):12,.0f} /s")
