"""`python -m mt` is the `mt` command."""

import sys

from .cli import main

sys.exit(main())
