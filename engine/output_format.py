"""The output format every entry point starts from (the virtual camera's usual 720p30)."""

DEFAULT_SIZE: tuple[int, int] = (1280, 720)
DEFAULT_FPS: float = 30.0
