#!/usr/bin/env python3
"""Follow a training job in the terminal: a thin wrapper of `trad watch JOB_ID`.

Usage: python scripts/watch_progress.py JOB_ID [--url http://127.0.0.1:8000]
"""

import sys

from trad.cli import main

if __name__ == "__main__":
    main(["watch", *sys.argv[1:]])
