"""What makes a password weak: too short, a well-known default, one repeated character, a keyboard
row. Used for the ARI password (the controller refuses to start) and the dashboard's (set-password
refuses it). A bottom leaf: imports nothing of the project."""

from __future__ import annotations

import unicodedata
from typing import Final

DEFAULTS: Final = frozenset({
    "admin", "administrateur", "asterisk", "ari", "changeme", "changez-moi", "default", "motdepasse",
    "mot de passe", "password", "passw0rd", "secret", "standardiste", "test", "root", "toor", "welcome",
    "bienvenue", "letmein", "soleil", "doudou", "loulou", "marseille", "nicolas", "chocolat",
})
"""Defaults of PBX and sample configs, and the commonest French passwords (the list is matched
after removing digits, case and accents at the ends: "Password123" is "password")."""
SEQUENCES: Final = ("azertyuiop", "qwertyuiop", "0123456789", "abcdefghijklmnopqrstuvwxyz", "9876543210")


def _folded(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c)).strip(" 0123456789!?.")


def weakness(password: str, min_len: int) -> str | None:
    """Why `password` is weak (French-free English, for logs and the integrator), or None."""
    if len(password) < min_len:
        return f"shorter than {min_len} characters"
    folded = _folded(password)
    if not folded:
        return "digits and punctuation only"
    if folded in DEFAULTS or password.lower() in DEFAULTS:
        return "a well-known default or common password"
    if len(set(password)) <= 2:
        return "one or two characters repeated"
    if any(password.lower() in seq or (folded in seq) for seq in SEQUENCES):
        return "a keyboard or alphabet sequence"
    return None
