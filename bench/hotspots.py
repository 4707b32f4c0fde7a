"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): the functions with the
most samples, by own time (top of stack) and by inclusive time.

    python bench/hotspots.py PROFILE.txt [--top 25] [--match monitor/]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def main() -> None:
    """Print the top frames."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="inclusive list: only frames containing")
    args = parser.parse_args()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            if args.match in frame:
                inclusive[frame] += count
    print(f"{samples} samples")
    print("\nown time:")
    for frame, count in own.most_common(args.top):
        print(f"{100 * count / samples:5.1f}%  {frame}")
    print("\ninclusive:")
    for frame, count in inclusive.most_common(args.top):
        print(f"{100 * count / samples:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
