"""Fixtures of the link tests: Mosquitto processes of our own."""

from tests.link.support import mosquitto, second_mosquitto

__all__ = ["mosquitto", "second_mosquitto"]
