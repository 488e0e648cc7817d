"""The `mkdata` command line (typer). Each command's logic lives in its package; this wires it."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="mkdata: render MIAD-style inspection datasets, contaminate them, benchmark detectors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """mkdata: render MIAD-style inspection datasets, contaminate them, benchmark detectors."""


if __name__ == "__main__":
    app()
