"""The console's settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ConsoleConfig(BaseModel):
    """How the command-centre console behaves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tile_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+\{z\}[^\s]*$",
        description="An internal tile server's URL template ({z}/{x}/{y}) under the grid "
        "polygons; unset: the polygons alone are the base map",
    )
    session_ttl_s: float = Field(
        default=12 * 3600, gt=60, description="How long a sign-in lasts (a wall-screen shift)"
    )
