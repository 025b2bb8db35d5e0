"""`python -m lstm_native`: the command line (see `lstm_native.cli`)."""
from .cli import main

raise SystemExit(main())
