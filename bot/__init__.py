"""Telegram adapter, command line and composition root."""
