"""ESP / CPTS guidance bot for health professionals in Brittany and ARS Bretagne."""

__version__ = "0.1.0"
