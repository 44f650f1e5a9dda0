"""Outward data streams (off until the user turns them on): WebSocket JSON and the VMC protocol."""
