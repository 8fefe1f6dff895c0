"""``python -m graphcomp``: the command line (see ``cli``)."""
from .cli import run

run()
