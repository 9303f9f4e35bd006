#!/usr/bin/python3
"""Parses a Prometheus text exposition file with prometheus_client's parser and
prints what it found: "family NAME TYPE" per family, then "NAME{k=v,...} VALUE"
per sample (labels sorted, unescaped). Exits 1 with the parser's error on bad
input. Used by metrics_test and the observe end-to-end test.

Usage: parse_exposition.py FILE
"""
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    try:
        for family in text_string_to_metric_families(text):
            print(f"family {family.name} {family.type}")
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                print(f"{s.name}{{{labels}}} {float(s.value)!r}")
    except ValueError as e:
        print(f"parse_exposition: {sys.argv[1]}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
