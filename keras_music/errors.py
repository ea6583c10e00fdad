"""Errors of the Python API that name the parameter at fault, so each CLI can name its flag instead.

The library says `labels='tags.csv': missing column 'clip_id'`; `python -m keras_music.train`
says `--labels 'tags.csv': missing column 'clip_id'` for the same error (`for_flags`).
"""

from __future__ import annotations

import re


class ParameterError(ValueError):
    """A bad argument: which parameter, the value given and what was expected.

    Example:

    >>> error = ParameterError("data", "stores/typo", "does not exist (expected a feature store folder)")
    >>> str(error)
    "data='stores/typo': does not exist (expected a feature store folder)"
    >>> error.for_flags({"data": "--data"})
    "--data 'stores/typo': does not exist (expected a feature store folder)"
    """

    def __init__(self, parameter: str, value, problem: str):
        self.parameter, self.value, self.problem = parameter, value, problem
        super().__init__(f"{parameter}={self._shown(value)}: {problem}")

    def __reduce__(self):  # pickled across processes (Beam workers, multiprocessing)
        return type(self), (self.parameter, self.value, self.problem)

    @staticmethod
    def _shown(value) -> str:
        return repr(str(value)) if value is not None and not isinstance(value, (int, float)) else repr(value)

    def for_flags(self, flags: dict[str, str]) -> str:
        """The message with the parameter replaced by its command-line flag (`{"data": "--data"}`)."""
        problem = self.problem
        for parameter, other in flags.items():  # `data='demo'` in the text: `--data 'demo'` (not metadata=)
            problem = re.sub(rf"(?<![\w.]){re.escape(parameter)}=", f"{other} ", problem)
        flag = flags.get(self.parameter)
        head = f"{self.parameter}={self._shown(self.value)}" if flag is None else f"{flag} {self._shown(self.value)}"
        return f"{head}: {problem}"


class MissingPathError(ParameterError, FileNotFoundError):
    """A path parameter that names nothing on disk (also a `FileNotFoundError`)."""
