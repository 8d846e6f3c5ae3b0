"""OmitI2V harness."""
__version__ = "0.1.0"
