"""Offline evaluation: ranking metrics, scoring a week, rolling-origin backtests."""
