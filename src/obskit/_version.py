"""obskit's version, in a leaf module so exporters can name it without importing the facade."""

__version__ = "0.1.0"
