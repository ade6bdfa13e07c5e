"""The fire brigade's side: who each brigade is, what it covers, and its API keys.

``directory`` keeps brigades and their keys (hashed, scoped, expiring); ``keys`` makes and
checks the tokens. The endpoint, webhooks and CAP build on these.
"""
