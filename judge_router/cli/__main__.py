"""`python -m judge_router.cli`: the same command line as the `judge-router` script."""

import sys

from judge_router.cli.main import main

sys.exit(main())
