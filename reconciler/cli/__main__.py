"""`python -m reconciler.cli`, as the `hubctl` script."""

import sys

from .main import main

sys.exit(main())
