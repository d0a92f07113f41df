import sys

from eos.cli import main

sys.exit(main())
