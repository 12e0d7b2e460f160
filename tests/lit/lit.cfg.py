# lit configuration for edgeq's pass tests: `lit tests/lit` (tests/test_passes.py runs it with pytest).
import os
import sys

import lit.formats

config.name = "edgeq-passes"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
bin_dir = os.path.dirname(sys.executable)
config.environment["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
config.substitutions.append(("edgeq-opt", f"{sys.executable} -m edgeq.dialect_passes.opt"))
