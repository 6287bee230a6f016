"""``python -m progan_zoo`` (used by torchrun: ``torchrun --nproc_per_node=8 -m progan_zoo train SPEC``)."""

import os
import sys

from progan_zoo.cli import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # A rank started by torchrun leaves without running C++ static destructors: with torch 2.13/2.14 and
    # gloo on the CPU, a rank was seen to abort at exit ("terminate called without an active exception",
    # SIGABRT) after a complete run and a destroyed process group, so torchrun reported a failed run. Every
    # file is written and closed by now (checkpoints atomically); only the streams need flushing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
