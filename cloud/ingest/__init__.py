"""Ingest: the broker's messages → dedup → device registry → rules → checkpointed alarm changes.

In pipeline order: ``ingress`` (the MQTT session), ``pipeline`` (decode, dedup, rules),
``checkpoint`` (one transaction per batch, then the acknowledgements), ``devices`` (what the
rules know of each device).
"""
