"""Errors that name what went wrong in terms a platform user can act on."""

from __future__ import annotations


class NdrError(Exception):
    """Base class for every error the platform raises on purpose."""


class SpecError(NdrError, ValueError):
    """A parameter-table item is missing, malformed, or lacks a key.

    The message always names the project, the item (``job_name`` sort-key value) and the key path,
    because that is what an operator needs to fix the row in the table.
    """

    def __init__(self, project: str, item: str, key: str, problem: str):
        self.project = project
        self.item = item
        self.key = key
        self.problem = problem
        super().__init__(f"project '{project}', item '{item}', key '{key}': {problem}")


class InputDataError(NdrError, ValueError):
    """Input data cannot be read at all (corrupt file, missing mapped column, unknown format)."""

    def __init__(self, location: str, problem: str):
        self.location = location
        self.problem = problem
        super().__init__(f"{location}: {problem}")


class SchemaContractError(NdrError, ValueError):
    """A DataFrame about to be written does not match its schema contract."""

    def __init__(self, dataset: str, problems: list[str]):
        self.dataset = dataset
        self.problems = problems
        super().__init__(f"dataset '{dataset}' violates its schema contract: " + "; ".join(problems))


class UnreadableFileError(InputDataError):
    """One input file cannot be read in full (truncated gzip, corrupt Parquet): ``cause`` says why."""

    def __init__(self, location: str, cause: str):
        self.cause = cause
        super().__init__(location, f"cannot read the file ({cause}): truncated or corrupt? re-deliver or remove it")


class ConcurrentUpdateError(SpecError):
    """A conditional write found the item changed since it was read: nothing was written."""

    def __init__(self, project: str, item: str, expected: dict):
        super().__init__(
            project, item, ", ".join(sorted(expected)) or "item",
            f"the item was changed by someone else since it was read (expected {expected}); nothing was written, "
            "re-run to apply the update to the current item",
        )
