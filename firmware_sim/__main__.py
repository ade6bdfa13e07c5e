"""``python -m firmware_sim``: the ``sim`` CLI on its own."""

from firmware_sim.cli import app

app(prog_name="firmware_sim")
