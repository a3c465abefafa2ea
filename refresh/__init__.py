"""The refresh service's domain: catalog, sources, storage, refresh logic and its HTTP blueprint."""
