"""Persistence: schema, engine, migrations, and one module per aggregate.

Repository functions take an ``AsyncConnection`` and the caller owns the transaction.
"""
