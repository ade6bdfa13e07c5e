"""The `gridalarm` command: one console script over every part (sim, edge, demo)."""
