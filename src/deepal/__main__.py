import sys

from deepal.cli import main

sys.exit(main())
