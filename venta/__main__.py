"""`python -m venta` runs the same entry point as the `venta` console script."""

import sys

from venta.cli import main

sys.exit(main())
