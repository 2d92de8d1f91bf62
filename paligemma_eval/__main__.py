import sys

from paligemma_eval.harness.cli import main

sys.exit(main())
