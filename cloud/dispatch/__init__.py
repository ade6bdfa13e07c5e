"""Dispatch: who gets an alarm, in what order, and who comes next when nobody answers."""
