"""trad: train trading strategies and watch the training live."""

__version__ = "0.1.0"
