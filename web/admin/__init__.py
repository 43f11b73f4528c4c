"""The admin area at /admin: the outbox dashboard (views), its login (auth, forms)."""
