"""What production refuses as a secret: placeholders, short keys, guessable admin passwords.

web/config.py applies these rules to the production configuration only (development and the
tests run on short, known keys on purpose). Each function returns why a value is refused, or
None; the reason never repeats the value.

`ADMIN_PASSWORD_HASH` cannot be checked: a hash does not tell how strong its password is.
"""

from __future__ import annotations

import re

# 32 characters of `secrets.token_hex()` (which gives 64) are 128 bits: the session and CSRF
# signatures are then no easier to forge than to guess the key.
MIN_SECRET_KEY_LENGTH = 32

# Long enough that 5 attempts a minute (ADMIN_LOGIN_RATE_LIMIT) never get through a
# dictionary of likely passwords.
MIN_ADMIN_PASSWORD_LENGTH = 12

# Values written to be replaced, compared without case or punctuation, as substrings: the
# .env.example style ("change-me"), the Flask book's ("hard to guess string"), the templates'
# ("your-secret-key") and flasky's own development and test keys.
_PLACEHOLDERS = (
    "changeme",
    "changethis",
    "replaceme",
    "yoursecret",
    "secretkeyhere",
    "hardtoguessstring",
    "devonlynotsecret",
    "testingonlynotsecret",
    "notarealsecret",
)

# Long enough to pass the length rule, and first in every password list.
_COMMON_PASSWORDS = frozenset(
    {
        "administrator",
        "password1234",
        "password12345",
        "passwordpassword",
        "123456789012",
        "1234567890123",
        "qwertyuiop123",
        "qwertyuiopasdf",
        "adminadminadmin",
        "letmeinletmein",
        "iloveyouiloveyou",
    }
)

_GENERATE_KEY = "python3 -c 'import secrets; print(secrets.token_hex())'"


def _letters_and_digits(value: str) -> str:
    return re.sub(r"[^a-z0-9]", "", value.lower())


def _is_placeholder(value: str) -> bool:
    plain = _letters_and_digits(value)
    return any(placeholder in plain for placeholder in _PLACEHOLDERS)


def secret_key_problem(key: str) -> str | None:
    """Why `key` is no SECRET_KEY for production, or None."""
    if _is_placeholder(key):
        return f"SECRET_KEY is a placeholder: replace it with the output of {_GENERATE_KEY}"
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return (
            f"SECRET_KEY is too short: production needs at least {MIN_SECRET_KEY_LENGTH} "
            f"characters, it has {len(key)}; use the output of {_GENERATE_KEY}"
        )
    return None


def admin_password_problem(username: str, password: str) -> str | None:
    """Why `password` is no ADMIN_PASSWORD for production, or None."""
    plain = _letters_and_digits(password)
    if len(password) < MIN_ADMIN_PASSWORD_LENGTH:
        reason = f"is shorter than {MIN_ADMIN_PASSWORD_LENGTH} characters"
    elif password.lower() == username.lower() or (plain and plain == _letters_and_digits(username)):
        reason = "is the username"
    elif plain in _COMMON_PASSWORDS or password.lower() in _COMMON_PASSWORDS:
        reason = "is one of the most common passwords"
    elif _is_placeholder(password):
        reason = "is a placeholder"
    else:
        return None
    return (
        f"ADMIN_PASSWORD {reason}: choose another, or set ADMIN_PASSWORD_HASH instead "
        "(see docs/configuration.md)"
    )
