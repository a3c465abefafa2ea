"""The life of a table version, in one place."""
