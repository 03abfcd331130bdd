"""Interfaces that extensions implement: event sources and key-value stores."""
