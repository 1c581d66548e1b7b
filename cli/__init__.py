"""The `hcops` command line (typer): one module per noun, shared conventions in `cli.common`.

When this package is imported by the `hcops` executable itself, Ctrl-C is taken over at once,
before anything heavy is imported (see `cli.interrupts`); importing `cli` from tests or other
programs leaves their SIGINT handling alone.
"""

import os as _os
import sys as _sys

if _sys.argv and _os.path.basename(_sys.argv[0]) == "hcops":
    from cli import interrupts as _interrupts

    _interrupts.install()
