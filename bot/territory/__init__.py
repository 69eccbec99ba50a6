"""Territories the bot understands: Brittany's communes, EPCI and départements (INSEE COG and
populations légales, from Etalab's `@etalab/decoupage-administratif`), and a resolver of free
text. Pure: no Telegram, no storage. See README « Territoires » and `refresh.py`."""

from bot.territory.data import TerritoryData, TerritoryDataError, load_data
from bot.territory.resolve import Resolution, Resolver, default_resolver, resolve_text
from bot.territory.understand import TerritoryKeys, settle, territory_keys, understand, values

__all__ = [
    "Resolution",
    "Resolver",
    "TerritoryData",
    "TerritoryDataError",
    "TerritoryKeys",
    "default_resolver",
    "load_data",
    "resolve_text",
    "settle",
    "territory_keys",
    "understand",
    "values",
]
