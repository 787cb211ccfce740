"""Jobs through one real bpy peer next to the Python test peer (a trivial command, concurrency 16).

    python -m bench.peer [--seconds 5]

Targets: at least 200 trivial jobs/s through one bpy peer, and a p50 no more than 5 ms above the
Python test peer's.
"""

from __future__ import annotations

import argparse

from blendbus import eventloop

from .roundtrip import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    rows = {r["peer"]: r["noop"] for r in eventloop.run(run(args.seconds, [16], blender=True))}
    py, bpy = rows["python"], rows["bpy"]
    print("| peer | jobs/s | p50 ms | p99 ms |\n|---|---|---|---|")
    for name, row in (("python", py), ("bpy", bpy)):
        print(f"| {name} | {row['calls_per_s']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |")
    print(f"bpy p50 - python p50 = {bpy['p50_ms'] - py['p50_ms']:+.2f} ms")


if __name__ == "__main__":
    main()
