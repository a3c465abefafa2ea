"""Leaf modules every part of the service uses: its errors, secret handling, Arrow types, Parquet.

Nothing here imports anything else of the service, so any layer may import these.
"""
