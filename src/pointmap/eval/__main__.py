"""`python -m pointmap.eval BENCHMARK ...`, the same as `pointmap eval`."""

import sys

from pointmap.eval.command import main

sys.exit(main())
