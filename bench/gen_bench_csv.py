#!/usr/bin/python3
"""Writes a large transactions CSV quickly and deterministically (for benchmarks).

    gen_bench_csv.py OUT.csv BYTES [--seed S]

Columns: id,ts,amount,age,score_a,score_b,merchant (amount ~5% and age ~3%
missing as empty fields; some merchants outside the model's categories). Writes
whole lines until the file holds about BYTES bytes, then prints the number of
data rows on stdout.

Speed: the rows after the id are formatted once for a block of 2^18 rows; every
block is that template with fresh ids (12 digits, unique, increasing) written into
it by numpy, so the cost is one memory copy per block, not Python per row.
"""

import argparse
import sys

import numpy as np

BLOCK_ROWS = 1 << 18
ID_DIGITS = 12
FIRST_ID = 10 ** (ID_DIGITS - 1)
MERCHANTS = np.array(["grocery", "travel", "online", "restaurant", "fuel", "pharmacy", "gaming"])
MERCHANT_P = [0.30, 0.12, 0.25, 0.14, 0.11, 0.05, 0.03]
HEADER = b"id,ts,amount,age,score_a,score_b,merchant\n"


def template(seed):
    """Returns (bytes of one block with zero ids, offsets of each line's id)."""
    rng = np.random.default_rng(seed)
    n = BLOCK_ROWS
    epoch = 1_704_067_200 + rng.integers(0, 60 * 86400, size=n)
    ts = np.datetime_as_string(epoch.astype("datetime64[s]"), unit="s")
    amount = np.round(rng.lognormal(3.6, 1.1, size=n), 2)
    age = np.round(np.clip(rng.normal(42, 13, size=n), 18, 90))
    score_a = np.round(rng.normal(0, 1, size=n), 4)
    score_b = np.round(rng.beta(2, 5, size=n) * 100, 3)
    merchant = rng.choice(MERCHANTS, size=n, p=MERCHANT_P)
    amount_missing = rng.random(n) < 0.05
    age_missing = rng.random(n) < 0.03
    zero_id = "0" * ID_DIGITS
    lines = []
    for i in range(n):
        a = "" if amount_missing[i] else repr(float(amount[i]))
        g = "" if age_missing[i] else repr(float(age[i]))
        lines.append(f"{zero_id},{ts[i]}Z,{a},{g},{score_a[i]!r},{score_b[i]!r},{merchant[i]}\n")
    data = "".join(lines).encode("ascii")
    lengths = np.fromiter((len(s) for s in lines), dtype=np.int64, count=n)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    return np.frombuffer(data, dtype=np.uint8).copy(), starts, lengths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("bytes", type=int)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()

    block, starts, lengths = template(args.seed)
    ends = starts + lengths
    digit_pos = starts[:, None] + np.arange(ID_DIGITS)[None, :]
    powers = 10 ** np.arange(ID_DIGITS - 1, -1, -1, dtype=np.int64)
    row_in_block = np.arange(BLOCK_ROWS, dtype=np.int64)

    rows = 0
    written = len(HEADER)
    with open(args.out, "wb") as f:
        f.write(HEADER)
        while written < args.bytes:
            ids = FIRST_ID + rows + row_in_block
            block[digit_pos] = (48 + (ids[:, None] // powers) % 10).astype(np.uint8)
            take = BLOCK_ROWS
            if written + len(block) > args.bytes:
                # Whole lines only: stop after the first line that reaches the target.
                take = int(np.searchsorted(ends, args.bytes - written, side="left")) + 1
                take = min(take, BLOCK_ROWS)
            f.write(block[: ends[take - 1]].tobytes())
            written += int(ends[take - 1])
            rows += take
    print(rows)


if __name__ == "__main__":
    sys.exit(main())
