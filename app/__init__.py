"""avatarcam desktop UI (PySide6). Imports the engine; the engine never imports this package."""
