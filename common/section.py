"""The base of every ``[section]`` of a device's settings file.

It lives apart from :mod:`common.settings` so that the larger role sections can
have modules of their own (:mod:`common.kiosk_settings` and so on) while the settings
module gathers them all into one :class:`~common.settings.Settings`.
This module needs only pydantic.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section"]


class Section(BaseModel):
    """One ``[section]`` of the settings.

    Unknown keys are errors, values never change, and each field's docstring is its
    description (``poradovnik check-config`` and the example files rely on that).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
