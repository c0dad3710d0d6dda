"""``python -m minirnn``: see :mod:`minirnn.cli`."""
import sys

from .cli import main

sys.exit(main())
