"""``python -m progan_zoo`` (used by torchrun: ``torchrun --nproc_per_node=8 -m progan_zoo train SPEC``)."""

import sys

from progan_zoo.cli import main

sys.exit(main())
