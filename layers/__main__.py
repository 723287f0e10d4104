import sys

from rapidboot.layers.cli import main

sys.exit(main())
