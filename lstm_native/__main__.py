"""`python -m lstm_native`: the command line (see `lstm_native.cli`)."""
import sys

from .cli import main

sys.exit(main())
