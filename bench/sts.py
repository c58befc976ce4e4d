"""STS token throughput: tokens issued and decoded per second, per encryption algorithm.

Prints one JSON object per line. Each line carries the same run's baseline, a bare
single-DES block encryption through ``cryptography`` (C code, one call per token): the
ratio ``per_s / baseline_per_s`` says how far a whole token (data block, CRC, cipher,
transposition, digits; plus DKGA for issuing) is from one native cipher call.

    python bench/sts.py            # 5000 tokens per case
    python bench/sts.py --tokens 20000
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from meterstack.sts import (
    DecoderKeyGenerationAlgorithm,
    EncryptionAlgorithm,
    KeyParameters,
    MeterPan,
    MeterRecord,
    TokenIssuer,
    VendingKey,
    decode_token,
)
from meterstack.sts.dea import des_encrypt_bytes


def _rate(count: int, work: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for index in range(count):
        work(index)
    return count / (time.perf_counter() - start)


def _issue_and_decode(count: int, issuer: TokenIssuer, meter: MeterRecord) -> tuple[float, float]:
    """Issue ``count`` credit tokens (DKGA included), then decode them; both rates [1/s]."""
    start = datetime(2004, 4, 1)
    tokens: list[str] = []
    decoder_key = issuer.decoder_key(meter)
    ea = meter.keys.ea

    def issue(i: int) -> None:
        when = start + timedelta(minutes=i)
        tokens.append(issuer.credit(meter, Decimal(i % 500 + 1), when, rnd=i % 16).digits)

    def decode(i: int) -> None:
        decode_token(tokens[i], decoder_key, ea)

    return _rate(count, issue), _rate(count, decode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=5000, help="tokens per case")
    count = parser.parse_args().tokens

    key = bytes.fromhex("abababababababab")
    block = bytes(8)
    baseline = _rate(count, lambda i: des_encrypt_bytes(key, block))

    pan = MeterPan("600727", "00000000000")
    cases = {
        "07": (VendingKey.from_hex("abababababababab"), EncryptionAlgorithm.EA07, "02"),
        "09": (VendingKey.from_hex("abababababababab"), EncryptionAlgorithm.EA09, "02"),
        "11": (
            VendingKey.from_hex("abababababababab949494949494949401234567"),
            EncryptionAlgorithm.EA11,
            "04",
        ),
    }
    for code, (vending_key, ea, dkga) in cases.items():
        keys = KeyParameters("123456", "01", 1, 2, ea=ea, dkga=DecoderKeyGenerationAlgorithm(dkga))
        meter = MeterRecord(pan, keys)
        issued, decoded = _issue_and_decode(count, TokenIssuer(vending_key), meter)
        for operation, rate in (("issue", issued), ("decode", decoded)):
            print(
                json.dumps(
                    {
                        "bench": "sts",
                        "operation": operation,
                        "ea": code,
                        "dkga": dkga,
                        "tokens": count,
                        "per_s": round(rate),
                        "baseline": "single DES block (cryptography)",
                        "baseline_per_s": round(baseline),
                        "ratio": round(rate / baseline, 4),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
