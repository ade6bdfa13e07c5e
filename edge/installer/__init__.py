"""The installer's tools behind `gridalarm edge`: each command's logic, free of any CLI."""
