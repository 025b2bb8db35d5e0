"""``python -m lstm_native.bench``."""
import sys

from .cli import main

sys.exit(main())
