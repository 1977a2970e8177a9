"""What the store raises."""

from __future__ import annotations

from common.errors import PoradovnikError


class StoreError(PoradovnikError):
    """The store refused or could not persist a change; nothing of it was written.

    ``code`` says why, for the service layer and the protocol:

    * ``duplicate_number``: a ticket's (service, day, sequence) is already taken,
      i.e. another writer issued the same number; the engine must reload.
    * ``unknown_row``: an update names a ticket or counter the store does not have.
    * ``integrity``: another constraint refused the change (e.g. an unknown service).
    * ``unavailable``: the database could not be reached or stayed locked.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
