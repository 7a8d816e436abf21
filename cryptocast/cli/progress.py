"""Training progress for ``cryptocast train``: a bar within the epoch on a terminal, one line per
epoch when piped (cron mail, CI logs), and nothing printed until training has really started, so
a pre-flight error is the only line on the screen."""

from __future__ import annotations

from typing import Any

from rich.console import Console


def epoch_line(row: dict[str, Any]) -> str:
    """One epoch's history row as a log line."""
    return (
        f"  epoch {row['epoch']:>3}  train {row['train_loss']:.5f}  "
        f"val {row['val_loss']:.5f}  lr {row['lr']:.2e}  {row['seconds']:.1f}s"
    )


class EpochProgress:
    """Context manager handing ``on_batch``/``on_epoch`` callbacks to ``holdout.train_run``.

    The header is printed at the first callback (after the data and model are ready). On a
    terminal a transient bar counts the batches of the running epoch; piped output gets only the
    epoch lines. ``quiet`` keeps the header and hides both.
    """

    def __init__(self, console: Console, header: str, quiet: bool = False) -> None:
        self.console, self.header, self.quiet = console, header, quiet
        self._started = False
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> EpochProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
        if exc[0] is None:
            self._start()  # a naive baseline trains without a batch: still say what ran

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self.console.print(self.header)

    def on_batch(self, epoch: int, batch: int, batches: int) -> None:
        self._start()
        if self.quiet or not self.console.is_terminal:
            return
        if self._progress is None:
            self._progress = progress_bar(
                self.console,
                ["  epoch {task.fields[epoch]:>3}", "bar", "count", "batches", "elapsed", "left"],
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=batches, epoch=epoch)
        self._progress.update(self._task, completed=batch, total=batches, epoch=epoch)

    def on_epoch(self, row: dict[str, Any]) -> None:
        self._start()
        if self._progress is not None:  # the bar is transient: the epoch line replaces it
            self._progress.stop()
            self._progress = None
        if not self.quiet:
            self.console.print(epoch_line(row), highlight=False)


def progress_bar(console: Any, layout: list[str], transient: bool):
    """A rich progress bar whose columns are ``layout``: ``bar``, ``count`` (done/total),
    ``elapsed``, ``left`` (time remaining), or any other string as a text column template.

    The train command's batch bar and the backtest's job and fold bars share this.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    named = {
        "bar": BarColumn,
        "count": MofNCompleteColumn,
        "elapsed": TimeElapsedColumn,
        "left": TimeRemainingColumn,
    }
    columns = [named[c]() if c in named else TextColumn(c) for c in layout]
    return Progress(*columns, console=console, transient=transient)
