"""``python -m fundarb`` runs the CLI."""

import sys

from fundarb.cli import main

sys.exit(main())
