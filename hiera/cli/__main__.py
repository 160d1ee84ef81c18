"""`python -m hiera.cli ...` (what torchrun starts): the `hiera-study` command line."""

import sys

from hiera.cli import main

sys.exit(main())
