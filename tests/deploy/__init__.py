"""Tests of deploy/: the AsyncAPI contract document and the Mosquitto configs, run for real."""
