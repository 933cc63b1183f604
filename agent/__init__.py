"""Standardiste: on-premise AI phone receptionist."""
