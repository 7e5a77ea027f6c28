"""The edges of the house: data sources, validation, tracking, compute clusters."""
