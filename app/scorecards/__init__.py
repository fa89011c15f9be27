"""Accountability scorecards, agency comparison and the metric rollups behind them."""
