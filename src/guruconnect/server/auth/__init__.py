"""Credentials of the dashboard plane: passwords, user tokens, permissions, rate limits.

Errors::

    AuthError                  every failure to authenticate or authorise
    ├── InvalidToken           bad signature, expired, wrong audience, missing claim
    │   └── RevokedToken       well-formed, but its jti is blacklisted or the user is gone
    └── RateLimited            too many failures; carries retry_after seconds
"""
