"""avatarcam engine: the headless core (sources, perception, animation, avatar, render, sinks).

The engine never imports Qt; the desktop UI in ``app/`` drives it through its public names.
"""

__version__ = "0.1.0"
