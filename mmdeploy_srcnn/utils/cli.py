"""What every command-line tool of the project shares: one-line argument errors, exit code 2."""
import argparse
import sys
from typing import NoReturn

from .fileio import printable

EXIT_USER_ERROR = 2


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but an argument error is one line naming the problem (not the usage block),
    with exit code 2, like every other bad input of the tools."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f'{self.prog}: error: {printable(message)} '
                                   f'(see {self.prog} --help)\n')


def line_buffered_stdout() -> None:
    """Print each line when it is complete, also into a pipe or a log (progress stays visible
    when the output is redirected)."""
    if hasattr(sys.stdout, 'reconfigure'):
        sys.stdout.reconfigure(line_buffering=True)
