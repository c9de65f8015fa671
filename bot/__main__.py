"""`python -m bot` runs the icp-bot command."""

import sys

from bot.cli import main

sys.exit(main())
