"""Identity: accounts shared by all tenants, their passwords and their single-use mail links.

- :mod:`.models`: the ``accounts``, ``account_tokens`` and ``memberships`` tables.
- :mod:`.passwords`: argon2id hashing and the rules a new password must pass.
- :mod:`.links`: expiring, single-use links built on the tenant's own domain.
- :mod:`.services`: registration, email verification, password reset, authentication.
"""
