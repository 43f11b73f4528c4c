"""Development helpers for flasky (local SMTP catcher, used by dev.py)."""
