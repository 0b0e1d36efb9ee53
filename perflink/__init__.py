"""perflink: link business data, financial results and performance assessment."""

__version__ = "0.1.0"
