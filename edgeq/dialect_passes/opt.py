"""edgeq-opt: like mlir-opt, for edgeq's passes.  edgeq-opt IN.mlir --edgeq-raise-int-contraction [-o OUT]"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from edgeq.dialect_passes._registry import passes, run_pipeline

    parser = argparse.ArgumentParser(prog="edgeq-opt", description=__doc__)
    parser.add_argument("input", help="an .mlir file, or - for standard input")
    parser.add_argument("-o", "--output", default="-")
    for name, p in passes().items():
        parser.add_argument(f"--{name}", dest="passes", action="append_const", const=name, help=p.description)
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.input == "-" else open(args.input).read()
    out = run_pipeline(text, args.passes or [])
    if args.output == "-":
        sys.stdout.write(out)
    else:
        with open(args.output, "w") as f:
            f.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
