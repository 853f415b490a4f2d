"""marshmallow schemas: the one source of validation, serialization and the spec."""
