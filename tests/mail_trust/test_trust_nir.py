"""NIR shape and key: a typo in a patient address must be refused, not delivered to a stranger."""

from __future__ import annotations

import itertools

import pytest

from backend.mail.trust import is_valid_nir, nir_key

VALID = [
    "255081416802538",  # the INSEE example used on Wikipedia
    "185057512345673",
    "292067800608405",
    "185052A12345633",  # Corsica: 2A counts as 19
    "185052a12345633",
    "296112B04501223",  # Corsica: 2B counts as 18
]


@pytest.mark.parametrize("nir", VALID)
def test_valid_nirs(nir: str) -> None:
    assert is_valid_nir(nir)


@pytest.mark.parametrize(
    "nir",
    [
        "255081416802539",  # wrong key
        "255081416802500",
        "25508141680253",  # 14 characters
        "2550814168025380",  # 16
        "555081416802538",  # sex digit 5 does not exist
        "2550814168025AB",
        "2550A1416802538",  # a letter outside the département
        "185052C12345633",  # only 2A and 2B
        "".join(chr(0xFF10 + int(d)) for d in "255081416802538"),  # full-width digits
        "",
    ],
)
def test_invalid_nirs(nir: str) -> None:
    assert not is_valid_nir(nir)


def test_the_key_catches_every_single_digit_typo_and_adjacent_swap() -> None:
    nir = "255081416802538"
    body = nir[:13]
    for i, digit in itertools.product(range(13), "0123456789"):
        typo = body[:i] + digit + body[i + 1 :]
        if typo != body:
            assert not is_valid_nir(typo + nir[13:]), typo
    for i in range(12):
        swapped = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
        if swapped != body:
            assert not is_valid_nir(swapped + nir[13:]), swapped


def test_corsican_key_uses_the_insee_substitution() -> None:
    assert nir_key("185052A123456") == 97 - int("1850519123456") % 97
    assert nir_key("296112B045012") == 97 - int("2961118045012") % 97
