"""The CSV sink: appends ``RequestRecord`` rows to ``requests.csv``.

The file has one header line, ``CSV_COLUMNS`` in order (units and meanings are
listed in ``rows.py``), then one line per row. Unknown values are empty fields;
``latency_ms`` and ``lateness_ms`` are written in fixed point with six
decimals (nanosecond resolution, never exponent notation).

A sink is a plain synchronous object: it may be created on one thread and
written from another, but calls must not overlap.
"""

from __future__ import annotations

import csv
import operator
import os
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any

from locust_hyperfaas.exceptions import SinkError
from locust_hyperfaas.recording.rows import CSV_COLUMNS, RequestRecord

FIXED_POINT_COLUMNS = ("lateness_ms", "latency_ms")
"""Columns written as ``%.6f`` rather than with ``repr``."""

_values = operator.attrgetter(*CSV_COLUMNS)
_fixed_point_indexes = tuple(CSV_COLUMNS.index(name) for name in FIXED_POINT_COLUMNS)


def _csv_line(row: RequestRecord) -> list[Any]:
    values = list(_values(row))
    for index in _fixed_point_indexes:
        value = values[index]
        if value is not None:
            values[index] = f"{value:.6f}"
    return values


class CsvSink:
    """Appends rows to a CSV file, writing the header only into an empty file.

    The file stays open between batches and is flushed after each one. Opening
    a non-empty file whose first line is not the expected header raises
    ``SinkError`` rather than mixing two layouts in one file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file: IO[str] | None = None
        self._check_existing_header()
        try:
            self._file = open(self.path, "a", newline="", encoding="utf-8")
        except OSError as exc:
            raise SinkError(
                f"cannot open CSV file {self.path}: {exc.strerror or exc}"
            ) from exc
        self._writer = csv.writer(self._file)

        try:
            if self._file.tell() == 0:
                self._writer.writerow(CSV_COLUMNS)
                self._file.flush()
        except OSError as exc:
            self._file.close()
            raise SinkError(
                f"cannot write CSV file {self.path}: {exc.strerror or exc}"
            ) from exc

    def _check_existing_header(self) -> None:
        try:
            if not os.path.isfile(self.path) or os.path.getsize(self.path) == 0:
                return
            with open(self.path, newline="", encoding="utf-8") as existing:
                header = next(csv.reader(existing), [])
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise SinkError(f"cannot read CSV file {self.path}: {exc}") from exc
        if tuple(header) != CSV_COLUMNS:
            raise SinkError(
                f"cannot append to CSV file {self.path}: its header does not match"
                " the columns of this version; move the file or choose another path"
            )

    def write(self, rows: Sequence[RequestRecord]) -> None:
        """Append ``rows`` and flush them to the operating system."""
        if self._file is None:
            raise SinkError(f"CSV file {self.path} is closed")
        try:
            self._writer.writerows(map(_csv_line, rows))
            self._file.flush()
        except OSError as exc:
            raise SinkError(
                f"cannot write CSV file {self.path}: {exc.strerror or exc}"
            ) from exc

    def close(self) -> None:
        """Flush and close the file; closing twice does nothing."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            file.close()
        except OSError as exc:
            raise SinkError(
                f"cannot close CSV file {self.path}: {exc.strerror or exc}"
            ) from exc

    def __enter__(self) -> CsvSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
