"""The development admin login: made once per instance folder, printed by dev.py.

DEVELOPMENT ONLY. `python3 dev.py` gives the admin area a login so that /admin opens on a
fresh clone: the username `dev` and a random password, generated the first time and kept in
`<instance>/dev-admin.json` (readable by its owner only; instance/ is git-ignored), so the
login, and an admin session, survive a restart. The app receives only the password's hash
(ADMIN_USERNAME and ADMIN_PASSWORD_HASH), never the password.

Three rules keep it out of production:

- it is added only when the configuration is development (FLASKY_CONFIG unset or
  `development`) and the environment sets none of ADMIN_USERNAME, ADMIN_PASSWORD_HASH and
  ADMIN_PASSWORD (the developer's own account, or an empty ADMIN_USERNAME to have none, wins);
- its hash carries a marker in its salt (DEV_SALT_PREFIX), and the app refuses a hash with
  that marker in any configuration but development (web/admin/auth.py), so copying dev.py's
  environment into a deployment opens nothing;
- the password exists only in the developer's instance folder.

Standard library only (dev.py runs before .venv exists): the hash is werkzeug's documented
scrypt format, `scrypt:N:r:p$salt$hex`, computed with hashlib.scrypt exactly as werkzeug
does, so werkzeug's check_password_hash verifies it (tests/unit/test_dev_admin.py checks).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from hashlib import scrypt
from pathlib import Path

USERNAME = "dev"
FILE_NAME = "dev-admin.json"
ADMIN_VARIABLES = ("ADMIN_USERNAME", "ADMIN_PASSWORD_HASH", "ADMIN_PASSWORD")

# Marks a development hash; web/admin/auth.py holds the same value (a unit test compares
# them: the app cannot import devtools, which is not part of a deployment's code path).
DEV_SALT_PREFIX = "flaskydev"

# werkzeug's default scrypt parameters.
_N, _R, _P = 2**15, 8, 1


@dataclass(frozen=True)
class DevAdmin:
    username: str
    password: str
    password_hash: str


def password_hash(password: str, salt: str) -> str:
    """`password`'s hash in werkzeug's scrypt format (what generate_password_hash makes)."""
    digest = scrypt(
        password.encode(), salt=salt.encode(), n=_N, r=_R, p=_P, maxmem=132 * _N * _R * _P
    )
    return f"scrypt:{_N}:{_R}:{_P}${salt}${digest.hex()}"


def is_dev_hash(value: str) -> bool:
    _method, _, rest = value.partition("$")
    return rest.startswith(DEV_SALT_PREFIX)


def dev_admin(instance: Path) -> DevAdmin:
    """The instance folder's development login: read from its file, or made and saved."""
    existing = read_dev_admin(instance)
    if existing is not None:
        return existing
    password = secrets.token_urlsafe(12)
    salt = DEV_SALT_PREFIX + secrets.token_hex(8)
    admin = DevAdmin(USERNAME, password, password_hash(password, salt))
    _save(instance / FILE_NAME, admin)
    return admin


def read_dev_admin(instance: Path) -> DevAdmin | None:
    """The saved login, or None when there is none (or it is not one this module wrote)."""
    try:
        data = json.loads((instance / FILE_NAME).read_text())
        admin = DevAdmin(data["username"], data["password"], data["password_hash"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    fields = (admin.username, admin.password, admin.password_hash)
    if not all(isinstance(field, str) and field for field in fields):
        return None
    return admin if is_dev_hash(admin.password_hash) else None


def dev_admin_settings(instance: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """ADMIN_USERNAME and ADMIN_PASSWORD_HASH for the instance's development login, or
    nothing: outside the development configuration, or when `environ` sets any admin variable
    (even to ''), which is then the developer's choice."""
    if environ.get("FLASKY_CONFIG", "development") != "development":
        return {}
    if any(name in environ for name in ADMIN_VARIABLES):
        return {}
    admin = dev_admin(instance)
    return {"ADMIN_USERNAME": admin.username, "ADMIN_PASSWORD_HASH": admin.password_hash}


def _save(path: Path, admin: DevAdmin) -> None:
    """Write the file readable by its owner only, atomically (a reader never sees half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover keeps its mode: start from a new file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(admin), fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
