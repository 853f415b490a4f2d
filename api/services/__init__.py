"""Business rules as plain typed functions. They raise `api.errors.DomainError`s."""
