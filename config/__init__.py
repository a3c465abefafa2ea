"""Configuration of the refresh service: everything read from the environment lives here."""

from config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
