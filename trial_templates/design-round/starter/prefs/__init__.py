"""Notification preferences: which notifications a user wants, where, and when."""
