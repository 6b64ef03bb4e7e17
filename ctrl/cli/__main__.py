"""`python -m ctrl.cli`, as the `ctrl` command."""

import sys

from ctrl.cli import main

sys.exit(main())
